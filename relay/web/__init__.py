"""The staff dashboard: librarians sign in by emailed link and moderate from a browser.

Plain server-rendered pages (Starlette, Jinja2) and one small script; every state change is
a POST carrying a CSRF token, every page is scoped to the signed-in staff member's library,
and every store, spool or moderation call runs through the `blocking` runner that `serve`
passes in, so the event loop never waits on a disk write.
"""
