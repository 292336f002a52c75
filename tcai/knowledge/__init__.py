"""Knowledge import: a business's facts and FAQs read from its own website or a file,
proposed as a diff against the bot's config and applied through `change_bot`
(docs/knowledge-import.md).

`fetch` crawls (own site only, robots.txt, caps, the webhook SSRF guard on every
request), `extract` reads pages (structured data first, then page text), `hours`
normalises opening times, `files` reads CSV and Markdown FAQ files, `merge` builds the
diff and `service` ties them together for the CLI. Nothing here decides how a bot
answers: that is `tcai.chat`.
"""
