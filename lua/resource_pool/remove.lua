#!lua flags=allow-oom
--[[ resource_pool/remove
  Take a member out of the pool. An idle member leaves at once; a leased member is
  marked retiring: its holder keeps it until checkin or the lease's reclaiming, and
  then it leaves instead of becoming idle (so it is never leased to two holders).
  Runs when the server is out of memory (allow-oom), so a pool can shrink then:
  it deletes an idle member, or marks a leased one in the retiring set, which
  only ever holds members of the leased set, so it cannot grow past the pool.
  Its one write comes after every read, so a key of another type changes nothing.
  KEYS[1]  idle  zset (member -> server time it became idle, ms)
  KEYS[2]  leased  zset (member -> lease deadline, ms)
  KEYS[3]  retiring  set (leased members removed from the pool)
  ARGV[1]  member  member
  Returns  1 removed, 2 leased and retiring (now or already), 0 not a member
  Worst case  O(log N), N the number of members
]]
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  return 1
end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('SADD', KEYS[3], ARGV[1])
  return 2
end
return 0
