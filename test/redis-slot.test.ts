// The slot of a key in a Redis Cluster (lib/redis/slot.ts), computed as the cluster specification
// says: CRC16 (XMODEM) of the key's hash tag, modulo 16384. The vectors are the specification's own
// and what `CLUSTER KEYSLOT` answers (test/redis/cluster-*.test.ts use a real cluster's answers).
import t from 'tap'
import { crc16, slotOf } from '../lib/redis/slot.js'

t.test('CRC16 is XMODEM\'s: the specification\'s check value, and none for nothing', async t => {
  t.equal(crc16('123456789'), 0x31C3)
  t.equal(crc16(''), 0)
})

t.test('CRC16 is of the key\'s bytes in UTF-8, as Redis sees them', async t => {
  t.equal(crc16('é'), 0x67C4, 'the two bytes C3 A9, not the one code unit E9')
  t.equal(slotOf('comet:{é}:meta'), 10180, 'the tag é alone')
})

t.test('the slot of a key with a hash tag is the slot of the tag alone', async t => {
  t.equal(slotOf('{user1000}.following'), slotOf('user1000'))
  t.equal(slotOf('{user1000}.followers'), slotOf('user1000'))
  t.equal(slotOf('comet:{room}:meta'), slotOf('comet:{room}:log'))
  t.equal(slotOf('foo{bar}{zap}'), slotOf('bar'), 'only the first tag counts')
  t.equal(slotOf('foo{{bar}}zap'), slotOf('{bar'), 'from the first { to the first } after it')
})

t.test('a key with no tag, or an empty one, counts whole', async t => {
  t.equal(slotOf('123456789'), 0x31C3 % 16384)
  t.equal(slotOf('foo{}{bar}'), crc16('foo{}{bar}') % 16384)
  t.equal(slotOf('foo{bar'), crc16('foo{bar') % 16384)
  t.equal(slotOf('foo}bar{'), crc16('foo}bar{') % 16384)
})

t.test('known slots: what a Redis Cluster answers to CLUSTER KEYSLOT', async t => {
  t.equal(slotOf('foo'), 12182)
  t.equal(slotOf('bar'), 5061)
  t.equal(slotOf('user1000'), 3443)
  t.equal(slotOf('é'), 10180)
  t.equal(slotOf(''), 0)
})
