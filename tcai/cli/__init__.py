"""The `tcai` command line: Typer + Rich over the core. Commands parse, call one core
function and render; rules live in the core."""
