#!lua flags=no-writes
--[[ lock/holds
  Tell whether the lock is held with a given token, and with which fencing
  number: how a caller settles an acquire whose reply was lost. While the lock is
  held, no acquire draws a number, so the counter still holds the holder's.
  Read-only, but the Lock model always sends it to the master, as `locked`.
  KEYS[1]  lock  string
  KEYS[2]  fence  fencing counter (string)
  ARGV[1]  token  the token
  Returns  {token, fencing number (0 when the counter is gone)} when the lock is held with this token, else nil
  Worst case  O(1)
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
return {ARGV[1], tonumber(redis.call('GET', KEYS[2]) or '0')}
