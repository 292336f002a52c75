"""The owner portal: server-rendered pages under /portal/ where business owners and
agency staff sign in and run their assistant (docs/http-api.md, "The owner portal").

`routes.py` is the table, `handlers.py` the pages, `web.py` the plumbing (templates,
cookies, CSRF, the signed-in visit), `chart.py` the dashboard's SVG and `sites.py` the
demo's business pages, which share the templates. Sign-in, sessions and roles are the
core's (`tcai.access.auth`, `tcai.access.permissions`); what the pages show comes from
`tcai.records` and `tcai.bots`.
"""
