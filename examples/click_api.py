"""Serve visitors through Switchyard's Click API (v3) — standard library only.

    SWITCHYARD_TOKEN=… python3 click_api.py      # then open http://127.0.0.1:8000/?sub_id_1=x

The visitor's IP, User-Agent, language and query go to the tracker; the answer (a redirect,
a page, …) goes back to the visitor, and the visitor keeps the uniqueness cookie.
"""
import base64
import json
import os
import urllib.parse
import urllib.request
from wsgiref.simple_server import make_server

TRACKER = os.environ.get("SWITCHYARD_URL", "http://127.0.0.1:8080")
TOKEN = os.environ["SWITCHYARD_TOKEN"]
COOKIE = "sy_uniqueness"


def click_api(environ):
    query = urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""))
    cookies = dict(
        part.strip().split("=", 1)
        for part in environ.get("HTTP_COOKIE", "").split(";")
        if "=" in part
    )
    form = [
        ("token", TOKEN),
        ("ip", environ.get("REMOTE_ADDR", "")),
        ("user_agent", environ.get("HTTP_USER_AGENT", "")),
        ("referrer", environ.get("HTTP_REFERER", "")),
        ("original_headers[Accept-Language]", environ.get("HTTP_ACCEPT_LANGUAGE", "")),
        ("original_host", environ.get("HTTP_HOST", "")),
        ("uniqueness_cookie", cookies.get(COOKIE, "")),
        ("info", "1"),
    ] + query
    request = urllib.request.Request(
        f"{TRACKER}/click_api/v3", data=urllib.parse.urlencode(form).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def app(environ, start_response):
    answer = click_api(environ)
    headers = [tuple(h.split(": ", 1)) for h in answer["headers"]]
    headers.append(("Content-Type", answer["contentType"]))
    ttl = int(answer.get("cookies_ttl", 24)) * 3600
    headers.append(("Set-Cookie", f"{COOKIE}={answer['uniqueness_cookie']}; Max-Age={ttl}; Path=/"))
    body = answer["body"] or ""
    if answer["contentType"].startswith(("image/", "application/pdf", "application/octet-stream")):
        data = base64.b64decode(body)
    else:
        data = body.encode()
    start_response(f"{answer['status']} -", headers)
    return [data]


if __name__ == "__main__":
    make_server("127.0.0.1", 8000, app).serve_forever()
