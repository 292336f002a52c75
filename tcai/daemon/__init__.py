"""The daemon: an aiohttp adapter over the core (`create_app(settings)`)."""
