-- include: dispatch
-- include: record_status
-- The webhook's one round trip for a whole batch: dedupe marker, the message's ledger (shared/ledger.py), mailbox
-- and (for an empty mailbox) the Celery queue, atomically, per message.
-- KEYS: leases, then (seen, inbox, ledger) per message.
-- ARGV: now_ms, lease_ms, dedupe_ttl_s, ledger_ttl_s, then (task_id, queue, envelope, conversation, job json) per
-- message, then optionally the status section of record_status.lua (Meta's statuses of our reply parts).
-- Returns per message: R.DUPLICATE, R.QUEUED_BEHIND (behind an earlier job), R.DISPATCHED (to its queue now); with
-- statuses, then one table: record_statuses' reply.
local deadline = tonumber(ARGV[1]) + tonumber(ARGV[2])
local result = {}
local messages = (#KEYS - 1) / 3
for i = 1, messages do
  local seen, inbox, ledger = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local a = 4 + (i - 1) * 5
  local entry = ARGV[a + 1] .. ' ' .. ARGV[a + 2] .. ' ' .. ARGV[a + 3]
  if redis.call('SET', seen, ARGV[a + 1], 'NX', 'EX', ARGV[3]) then
    if redis.call('RPUSH', inbox, entry) == 1 then
      dispatch(entry, inbox, KEYS[1], deadline)
      result[i] = R.DISPATCHED
    else
      result[i] = R.QUEUED_BEHIND
    end
    redis.call('HSET', ledger, 'job', ARGV[a + 5], 'conv', ARGV[a + 4], 'task', ARGV[a + 1],
      'received_ms', ARGV[1], 'queued', result[i])
    redis.call('EXPIRE', ledger, ARGV[4])
  else
    -- A write even for a duplicate: WAIT after this script then also covers the first delivery's write, which may
    -- have come through another connection and not have reached a replica yet (its webhook got a 503).
    redis.call('EXPIRE', seen, ARGV[3])
    result[i] = R.DUPLICATE
  end
end
local statuses = 4 + 5 * messages + 1
if #ARGV >= statuses then result[messages + 1] = record_statuses(statuses) end
return result
