"""A webhook receiver for trying smpp-bridge out: verifies each POST with the account's secret
(Standard Webhooks, the ``standardwebhooks`` package) and prints the event.

    python examples/webhook_receiver.py whsec_... [PORT]

Listens on 127.0.0.1:PORT (default 9000), answers 204 to a verified event, 400 to anything
else. Duplicates (the same webhook-id) are printed once. A demo, not a production server.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


def serve(secret: str, port: int) -> None:
    hook = Webhook(secret)
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                hook.verify(body, headers)
            except WebhookVerificationError as exc:
                print(f"refused: {exc}", flush=True)
                self.send_response(400)
                self.end_headers()
                return
            event = json.loads(body)
            if headers["webhook-id"] not in seen:
                seen.add(headers["webhook-id"])
                print(
                    f"verified {event['type']} {event['id']} state={event['data']['state']}",
                    flush=True,
                )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on http://127.0.0.1:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    if len(sys.argv) < 2 or not sys.argv[1].startswith("whsec_"):
        sys.exit("usage: python examples/webhook_receiver.py whsec_... [PORT]")
    serve(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 9000)
