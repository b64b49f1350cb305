-- include: dispatch
-- Pops the finished head and hands the next job to its queue.
-- KEYS: inbox, leases, run. ARGV: task_id, now_ms, lease_ms, token ('' = whoever holds the claim).
-- Returns R.HANDED_ON, R.MAILBOX_EMPTY, R.NOT_HEAD (the head was not this job) or R.HELD_ELSEWHERE (another live
-- copy holds the claim); nothing changes in the last two cases.
-- The token check matters when this copy lost its lease (missed heartbeats) and the reaper handed the job to a
-- second copy that is still running: popping now would start the next message while this one still runs.
local head = redis.call('LINDEX', KEYS[1], 0)
if not head then redis.call('ZREM', KEYS[2], KEYS[1]) return R.MAILBOX_EMPTY end
if head_id(head) ~= ARGV[1] then return R.NOT_HEAD end
local holder = redis.call('GET', KEYS[3])
if holder and ARGV[4] and ARGV[4] ~= '' and holder ~= ARGV[4] then return R.HELD_ELSEWHERE end
redis.call('LPOP', KEYS[1])
redis.call('DEL', KEYS[3])
local nxt = redis.call('LINDEX', KEYS[1], 0)
if not nxt then redis.call('ZREM', KEYS[2], KEYS[1]) return R.MAILBOX_EMPTY end
dispatch(nxt, KEYS[1], KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[3]))
return R.HANDED_ON
