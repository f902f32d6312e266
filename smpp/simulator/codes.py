"""The command_status codes the simulated SMSC answers with, taken from the one table."""

from smpp.codec.status import by_name

ROK = 0
RINVCMDLEN = by_name("ESME_RINVCMDLEN").code
RINVCMDID = by_name("ESME_RINVCMDID").code
RINVBNDSTS = by_name("ESME_RINVBNDSTS").code
RALYBND = by_name("ESME_RALYBND").code
RINVDSTADR = by_name("ESME_RINVDSTADR").code
RBINDFAIL = by_name("ESME_RBINDFAIL").code
RINVPASWD = by_name("ESME_RINVPASWD").code
RINVSYSID = by_name("ESME_RINVSYSID").code
RMSGQFUL = by_name("ESME_RMSGQFUL").code
RTHROTTLED = by_name("ESME_RTHROTTLED").code


def parse_status(text: str) -> int:
    """'ESME_RTHROTTLED', 'RTHROTTLED', '0x58' or '88' -> 88."""
    text = text.strip()
    if text[:1].isdigit():
        return int(text, 0)
    name = text.upper()
    return by_name(name if name.startswith("ESME_") else "ESME_" + name).code
