-- include: dispatch
-- A worker's copy of a job asks to run it.
-- KEYS: inbox, leases, run. ARGV: task_id, now_ms, lease_ms, token.
-- Returns R.CLAIMED (this copy may run the job), R.CLAIMED_AFTER_WORKER_LOST / R.CLAIMED_AFTER_TIME_LIMIT (it may,
-- and the previous copy died that way: see release_lost.lua), R.NOT_HEAD (no longer the mailbox's head: already
-- done, a stale redelivery), R.HELD_ELSEWHERE (another live copy holds it).
local head = redis.call('LINDEX', KEYS[1], 0)
if not head or head_id(head) ~= ARGV[1] then return R.NOT_HEAD end
local result = R.CLAIMED
local holder = redis.call('GET', KEYS[3])
if holder and string.sub(holder, 1, 5) == 'lost:' then
  -- The previous copy's tombstone: take the claim and tell the caller how that copy ended.
  result = (string.sub(holder, 6) == 'time_limit') and R.CLAIMED_AFTER_TIME_LIMIT or R.CLAIMED_AFTER_WORKER_LOST
  redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[3])
elseif not redis.call('SET', KEYS[3], ARGV[4], 'NX', 'PX', ARGV[3]) then
  if holder ~= ARGV[4] then return R.HELD_ELSEWHERE end
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[3]), KEYS[1])
return result
