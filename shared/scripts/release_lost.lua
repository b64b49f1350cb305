-- include: dispatch
-- Celery's parent process saw the copy running this job die (its pool process was lost, or killed at the hard time
-- limit): drop that copy's claim so the next copy can take it at once instead of after the lease. With
-- redispatch = 1 (Celery acknowledged the message and will not redeliver it) the head is handed to its queue now.
-- KEYS: inbox, leases, run. ARGV: task_id, now_ms, lease_ms, redispatch (1/0).
-- Returns R.RELEASED, or R.NOT_HEAD when the job is no longer the head (nothing changed).
local head = redis.call('LINDEX', KEYS[1], 0)
if not head or head_id(head) ~= ARGV[1] then return R.NOT_HEAD end
redis.call('DEL', KEYS[3])
local deadline = tonumber(ARGV[2]) + tonumber(ARGV[3])
if ARGV[4] == '1' then
  dispatch(head, KEYS[1], KEYS[2], deadline)
else
  redis.call('ZADD', KEYS[2], deadline, KEYS[1])
end
return R.RELEASED
