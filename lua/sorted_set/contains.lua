#!lua flags=no-writes
--[[ sorted_set/contains
  Tell whether a member is in the set (its ZSCORE is not nil), comparing
  encoded bytes.
  KEYS[1]  set  sorted set
  ARGV[1]  member  encoded member
  Returns  1 when it is a member, else 0
  Worst case  O(1)
]]
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 1
end
return 0
