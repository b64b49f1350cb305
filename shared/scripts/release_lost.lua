-- include: dispatch
-- Celery's parent process saw the copy running this job die (its pool process was lost, or killed at the hard time
-- limit): replace that copy's claim with a tombstone `lost:<kind>`, which the next copy's claim takes at once
-- (instead of after the lease) and reports, so the job runner can decide without an extra round trip. With
-- redispatch = 1 (Celery acknowledged the message and will not redeliver it) the head is handed to its queue now.
-- KEYS: inbox, leases, run. ARGV: task_id, now_ms, lease_ms, redispatch (1/0), kind (worker_lost/time_limit).
-- Returns R.RELEASED, or R.NOT_HEAD when the job is no longer the head (nothing changed).
local head = redis.call('LINDEX', KEYS[1], 0)
if not head or head_id(head) ~= ARGV[1] then return R.NOT_HEAD end
-- A hard time limit may also surface as a lost worker: never let that turn the time limit into a rerun.
if redis.call('GET', KEYS[3]) ~= 'lost:time_limit' then
  redis.call('SET', KEYS[3], 'lost:' .. ARGV[5], 'PX', ARGV[3])
end
local deadline = tonumber(ARGV[2]) + tonumber(ARGV[3])
if ARGV[4] == '1' then
  dispatch(head, KEYS[1], KEYS[2], deadline)
else
  redis.call('ZADD', KEYS[2], deadline, KEYS[1])
end
return R.RELEASED
