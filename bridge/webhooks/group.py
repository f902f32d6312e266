"""The sender's consumer group on the ``sb:webhooks`` stream, and the Lua scripts the senders
run on it and on the retry set (atomic, so any number of senders can run them at once)."""

from __future__ import annotations

import redis as redis_lib

from bridge.redis import keys

# Put due members of the retry set (KEYS[1]) back on the stream (KEYS[2]): ARGV[1] = now (ms),
# ARGV[2] = how many at most. Atomic: a member is on the stream or in the set, never neither.
MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  local fields = cjson.decode(member)
  local args = {}
  for k, v in pairs(fields) do
    args[#args + 1] = k
    args[#args + 1] = v
  end
  redis.call('XADD', KEYS[2], '*', unpack(args))
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""


# Forget consumers of the group (KEYS[1] the stream, ARGV[1] the group) that hold no entry and
# have not read for ARGV[2] ms (senders that died and were replaced: a restart makes a new
# name), except ARGV[3] (ourselves). Atomic, so a consumer that still holds entries is never
# removed (that would orphan its entries). A live sender that got no entry for that long may go
# too: Redis 6.2 (the one `run` embeds) counts idle from the last read or claim that returned
# entries, not from an empty blocking XREADGROUP. That is harmless: it holds nothing, and Redis
# makes the name again when its blocked or next read gets an entry. Returns how many went.
FORGET_GONE = """
local removed = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['pending'] == 0 and f['idle'] >= tonumber(ARGV[2]) and f['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed = removed + 1
  end
end
return removed
"""
FORGET_AFTER = 3_600.0  # seconds a consumer holding nothing is idle before it is forgotten


def ensure_group(redis: redis_lib.Redis) -> None:
    """The stream's consumer group, made from the stream's start (no event is skipped)."""
    try:
        redis.xgroup_create(keys.webhooks_stream_key(), keys.WEBHOOKS_GROUP, id="0", mkstream=True)
    except redis_lib.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
