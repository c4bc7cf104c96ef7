#!lua
--[[ lock/extend
  Set a held lock's expiry to a new duration from now, only for its holder.
  KEYS[1]  lock  string
  ARGV[1]  token  the holder's token
  ARGV[2]  expiry_ms  new time to live in milliseconds, from now (at least 1)
  Returns  1 when the expiry was set, 0 when the lock is not held with this token
  Worst case  O(1)
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
