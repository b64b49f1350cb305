"""Per-conversation mailboxes: exactly one job of a conversation is in Celery at any time, in arrival order.

Layout in Redis:
- `lp:seen:<ref>`       dedupe marker (SET NX, >= 7 days), written in the same atomic script as the enqueue and the
                         message's ledger (`lp:msg:<ref>`, shared/ledger.py), so a marker can never exist for a
                         message that was not queued; `<ref>` is the keyed hash of the message id;
- `lp:inbox:<conv>`      list of entries `<task_id> <queue> <celery envelope>`; the head is the job in flight;
- `lp:leases`            sorted set: inbox key -> deadline (ms). A running job pushes its deadline forward; when a
                         deadline passes (the worker was SIGKILLed), the reaper hands the head out again.
- `lp:run:<task_id>`     the claim of the copy that is running a job, so a redelivered copy does not run twice.

The webhook runs INGEST (one round trip for a whole batch). A worker runs CLAIM before the pipeline and COMPLETE
after it; COMPLETE pops the head and hands the next entry to its queue: the "mailbox" (actor) pattern,
which keeps order per conversation and runs conversations in parallel.
"""

from __future__ import annotations

SEEN_PREFIX = "lp:seen:"
INBOX_PREFIX = "lp:inbox:"
LEASES_KEY = "lp:leases"
RUN_PREFIX = "lp:run:"

# Shared Lua: push an inbox entry's envelope to its queue and (re)start its lease.
_DISPATCH = """
local function dispatch(entry, inbox, leases, deadline)
  local s1 = string.find(entry, ' ', 1, true)
  local s2 = string.find(entry, ' ', s1 + 1, true)
  redis.call('LPUSH', string.sub(entry, s1 + 1, s2 - 1), string.sub(entry, s2 + 1))
  redis.call('ZADD', leases, deadline, inbox)
end
local function head_id(entry)
  return string.sub(entry, 1, string.find(entry, ' ', 1, true) - 1)
end
"""

# KEYS: leases, then (seen, inbox, ledger) per message. ARGV: now_ms, lease_ms, dedupe_ttl_s, ledger_ttl_s, then
# (task_id, queue, envelope, conversation, job json) per message. Writes each new message's ledger
# (shared/ledger.py) with its mailbox entry. Returns per message: 0 duplicate, 1 queued behind an earlier job,
# 2 dispatched now.
INGEST = (
    _DISPATCH
    + """
local deadline = tonumber(ARGV[1]) + tonumber(ARGV[2])
local result = {}
for i = 1, (#KEYS - 1) / 3 do
  local seen, inbox, ledger = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local a = 4 + (i - 1) * 5
  local entry = ARGV[a + 1] .. ' ' .. ARGV[a + 2] .. ' ' .. ARGV[a + 3]
  if redis.call('SET', seen, ARGV[a + 1], 'NX', 'EX', ARGV[3]) then
    if redis.call('RPUSH', inbox, entry) == 1 then
      dispatch(entry, inbox, KEYS[1], deadline)
      result[i] = 2
    else
      result[i] = 1
    end
    redis.call('HSET', ledger, 'job', ARGV[a + 5], 'conv', ARGV[a + 4], 'task', ARGV[a + 1],
      'received_ms', ARGV[1], 'queued', result[i])
    redis.call('EXPIRE', ledger, ARGV[4])
  else
    -- A write even for a duplicate: WAIT after this script then also covers the first delivery's write, which may
    -- have come through another connection and not have reached a replica yet (its webhook got a 503).
    redis.call('EXPIRE', seen, ARGV[3])
    result[i] = 0
  end
end
return result
"""
)

# KEYS: inbox, leases, run. ARGV: task_id, now_ms, lease_ms, token.
# Returns 1 if this copy may run the job, 0 if the job is no longer the head (already done: a stale
# redelivery), -1 if another live copy holds it.
CLAIM = (
    _DISPATCH
    + """
local head = redis.call('LINDEX', KEYS[1], 0)
if not head or head_id(head) ~= ARGV[1] then return 0 end
if not redis.call('SET', KEYS[3], ARGV[4], 'NX', 'PX', ARGV[3]) then
  if redis.call('GET', KEYS[3]) ~= ARGV[4] then return -1 end
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[3]), KEYS[1])
return 1
"""
)

# KEYS: inbox, leases, run. ARGV: token, now_ms, lease_ms. Heartbeat of a running job.
RENEW = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('ZADD', KEYS[2], 'XX', tonumber(ARGV[2]) + tonumber(ARGV[3]), KEYS[1])
return 1
"""

# KEYS: inbox, leases, run. ARGV: token, deadline_ms. A job that defers itself (retry with countdown) releases
# its claim so the retried copy can take it, and keeps the conversation leased until the retry is due.
DEFER = """
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
redis.call('ZADD', KEYS[2], 'XX', tonumber(ARGV[2]), KEYS[1])
return 1
"""

# KEYS: inbox, leases, run. ARGV: task_id, now_ms, lease_ms, token.
# Pops the finished head and hands the next job to its queue. Returns 1 handed on, 0 inbox now empty,
# -1 the head was not this job, -2 another live copy holds the claim (nothing changed in both cases).
# The token check matters when this copy lost its lease (missed heartbeats) and the reaper handed the job to a
# second copy that is still running: popping now would start the next message while this one still runs.
COMPLETE = (
    _DISPATCH
    + """
local head = redis.call('LINDEX', KEYS[1], 0)
if not head then redis.call('ZREM', KEYS[2], KEYS[1]) return 0 end
if head_id(head) ~= ARGV[1] then return -1 end
local holder = redis.call('GET', KEYS[3])
if holder and ARGV[4] and ARGV[4] ~= '' and holder ~= ARGV[4] then return -2 end
redis.call('LPOP', KEYS[1])
redis.call('DEL', KEYS[3])
local nxt = redis.call('LINDEX', KEYS[1], 0)
if not nxt then redis.call('ZREM', KEYS[2], KEYS[1]) return 0 end
dispatch(nxt, KEYS[1], KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[3]))
return 1
"""
)

# KEYS: leases. ARGV: now_ms, lease_ms, limit. Re-dispatches the head of every conversation whose lease ran out
# (its worker died without Celery giving the message back yet). Returns how many were handed out again.
REAP = (
    _DISPATCH
    + """
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local n = 0
for _, inbox in ipairs(expired) do
  local head = redis.call('LINDEX', inbox, 0)
  if head then
    redis.call('DEL', 'lp:run:' .. head_id(head))
    dispatch(head, inbox, KEYS[1], now + tonumber(ARGV[2]))
    n = n + 1
  else
    redis.call('ZREM', KEYS[1], inbox)
  end
end
return n
"""
)


def seen_key(ref: str) -> str:
    """The dedupe marker of the message whose ref (`shared.ledger.message_ref`) is `ref`."""
    return SEEN_PREFIX + ref


def inbox_key(conversation: str) -> str:
    return INBOX_PREFIX + conversation


def run_key(task_id: str) -> str:
    return RUN_PREFIX + task_id
