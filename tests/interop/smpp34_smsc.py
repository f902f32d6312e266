"""A small SMSC built on smpp34 (https://pypi.org/project/smpp34/, a Rust/tokio SMPP 3.4 server
we did not write), for tests/interop/test_smpp34.py. Runs under its own virtualenv's Python
(see tests/interop/requirements-smpp34.txt), never imports the project.

Usage: python smpp34_smsc.py PORT
Prints one JSON line per event: {"event": "listening"} first, then every bind, submit_sm (answered
with a hex message id), the deliver_sm_resp status of the delivery receipt sent for it (esm_class
0x04, Appendix B text), and every session that ended. smpp34 answers enquire_link and unbind
itself and accepts any credentials.
"""

import asyncio
import json
import sys

import smpp34

RECEIPT = (
    "id:{mid} sub:001 dlvrd:001 submit date:2411241200 done date:2411241201 "
    "stat:DELIVRD err:000 text:"
)


def log(obj):
    print(json.dumps(obj), flush=True)


async def send_receipt(esme, submit, message_id):
    resp = await esme.deliver_sm(
        submit.source_addr,
        RECEIPT.format(mid=message_id).encode(),
        source_addr=submit.destination_addr,
        esm_class=0x04,
    )
    log({"event": "deliver_sm_resp", "message_id": message_id, "status": resp.command_status})


async def main(port):
    server = smpp34.Server("127.0.0.1", port, system_id="smpp34")
    await server.start()
    log({"event": "listening", "port": port, "version": smpp34.__version__})
    esmes, count, tasks = {}, 0, set()
    while True:
        event = await server.next()
        if isinstance(event, smpp34.Esme):
            esmes[event.session_id] = event
            log({"event": "bind", "system_id": event.system_id, "can_receive": event.can_receive})
        elif isinstance(event, smpp34.SubmitSmEvent):
            count += 1
            message_id = f"{count:X}"
            event.accept(message_id)
            log(
                {
                    "event": "submit_sm",
                    "destination_addr": event.destination_addr,
                    "esm_class": event.esm_class,
                    "message_id": message_id,
                }
            )
            task = asyncio.ensure_future(send_receipt(esmes[event.session_id], event, message_id))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        elif isinstance(event, smpp34.Unbound):
            log({"event": "unbound"})


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
