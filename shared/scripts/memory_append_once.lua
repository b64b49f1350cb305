-- Appends a job's turns to a conversation's memory only if the job's once-marker is new, so a job redelivered
-- after it stored its turn does not store it twice.
-- KEYS: memory list, once-marker ('' = always append). ARGV: max, ttl_s, once_ttl_s, entries...
-- Returns R.APPENDED or R.ALREADY_APPENDED.
if KEYS[2] ~= '' and not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return R.ALREADY_APPENDED end
for i = 4, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return R.APPENDED
