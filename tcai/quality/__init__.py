"""Checks that a deployment is right: the smoke test and the industry sweep, the go-live
check per bot, the pre-deployment checklist, the LLM probe, the facts-mode evaluation,
and the stub LLM they run against."""
