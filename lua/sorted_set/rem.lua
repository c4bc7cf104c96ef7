#!lua flags=allow-oom
--[[ sorted_set/rem
  Remove a member (ZREM), comparing encoded bytes.
  KEYS[1]  set  sorted set
  ARGV[1]  member  encoded member
  Returns  1 when the member was removed, 0 when it was not there
  Worst case  O(log N)
]]
return redis.call('ZREM', KEYS[1], ARGV[1])
