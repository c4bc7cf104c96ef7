#!lua flags=allow-oom
--[[ sorted_set/truncate
  Keep the members with the highest scores and remove the rest
  (ZREMRANGEBYRANK 0 -(keep+1), as Python redisext does).
  KEYS[1]  set  sorted set
  ARGV[1]  keep  how many members to keep, a non-negative decimal integer
  Returns  the number of members removed
  Worst case  O(log N + M), M the members removed (at most N - keep)
]]
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then
  return 0
end
return redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
