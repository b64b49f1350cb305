-- Shared by the mailbox scripts: push an inbox entry's envelope to its Celery queue and (re)start its lease.
-- An inbox entry is `<task_id> <queue> <celery envelope>`.
local function dispatch(entry, inbox, leases, deadline)
  local s1 = string.find(entry, ' ', 1, true)
  local s2 = string.find(entry, ' ', s1 + 1, true)
  redis.call('LPUSH', string.sub(entry, s1 + 1, s2 - 1), string.sub(entry, s2 + 1))
  redis.call('ZADD', leases, deadline, inbox)
end
local function head_id(entry)
  return string.sub(entry, 1, string.find(entry, ' ', 1, true) - 1)
end
