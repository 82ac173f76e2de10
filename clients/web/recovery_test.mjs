// Unit checks of static/recovery.js in Node (no browser): what a page sends
// on a new connection, and which frames it shows. Run by recovery_test.go;
// prints OK when every check passed.
import assert from 'node:assert/strict';
import { Recovery } from './static/recovery.js';

const welcome = (offset, epoch) => ({ type: 'system', connection_id: 'c', user_id: 'u-alice', inbox: { offset, epoch } });
const msg = (room, offset, epoch = 'e1') => ({ type: 'message', room, offset, epoch, message: `m${offset}` });
const priv = (offset, epoch = 'i1') => ({ type: 'private_message', offset, epoch, message: `p${offset}` });
const refusal = (join, code = 'unavailable') => ({ type: 'error', id: join.id, code, message: `could not join room "${join.room}"` });

// A first join asks for the history; a rejoin asks since the last message seen.
{
  const r = new Recovery({ history: 5 });
  r.observe(welcome(0, ''));
  const join = r.join('tapas');
  assert.equal(join.history, 5);
  assert.equal(join.since, undefined);
  r.observe({ type: 'room_joined', id: join.id, room: 'tapas', offset: 9, epoch: 'e1' });
  for (const off of [5, 6, 7, 8, 9, 10]) assert.equal(r.observe(msg('tapas', off)), true, `message ${off} shown`);
  assert.equal(r.observe(msg('tapas', 10)), false, 'a message shown once');
  r.observe(welcome(0, ''));
  const [rejoin, recover] = r.resume();
  assert.deepEqual(rejoin.since, { offset: 10, epoch: 'e1' });
  assert.equal(rejoin.history, undefined);
  assert.equal(recover.type, 'recover_private');
}

// Unacknowledged messages go again with their ids, in order; an ack or a
// refusal ends the wait, unavailable does not.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const a = r.track({ type: 'message', message: 'a' });
  const b = r.track({ type: 'private_message', target_user: 'bob', message: 'b' });
  const c = r.track({ type: 'message', message: 'c' });
  const d = r.track({ type: 'message', message: 'd' });
  const e = r.track({ type: 'message', message: 'e' });
  assert.ok(a.id && b.id && a.id !== b.id);
  r.observe({ type: 'ack', id: a.id });
  r.observe({ type: 'error', id: c.id, code: 'unavailable' });
  r.observe({ type: 'error', id: e.id, code: 'rate_limited' });
  r.observe({ type: 'error', id: d.id, code: 'invalid_frame' });
  r.observe(welcome(0, ''));
  assert.deepEqual(r.resume().filter((f) => f.message).map((f) => f.id), [b.id, c.id, e.id]);
}

// Live private messages before the replay: each shown once, and the inbox
// moves only over an unbroken run, so a second cut asks again for the rest.
{
  const r = new Recovery();
  r.observe(welcome(2, 'i1'));
  assert.equal(r.observe(priv(3)), true);
  r.observe(welcome(6, 'i1')); // away: 4, 5, 6 missed
  assert.equal(r.observe(priv(7)), true, 'live before the replay');
  assert.equal(r.observe(priv(4)), true, 'replayed');
  assert.deepEqual(r.inbox, { offset: 4, epoch: 'i1' });
  r.observe(welcome(7, 'i1')); // cut again
  assert.deepEqual(r.resume().find((f) => f.type === 'recover_private').since, { offset: 4, epoch: 'i1' });
  for (const off of [5, 6]) assert.equal(r.observe(priv(off)), true);
  assert.equal(r.observe(priv(7)), false, 'shown once');
  assert.deepEqual(r.inbox, { offset: 7, epoch: 'i1' });
}

// recovered false: the room moves to the server's position and the gap is
// left for the history API, once.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const join = r.join('tapas');
  r.observe({ type: 'room_joined', id: join.id, room: 'tapas', offset: 3, epoch: 'e1' });
  r.observe(msg('tapas', 4));
  r.observe(welcome(0, ''));
  const [rejoin] = r.resume();
  r.observe({ type: 'room_joined', id: rejoin.id, room: 'tapas', offset: 300, epoch: 'e1', recovered: false });
  assert.deepEqual(r.takeGap('tapas'), { after: 4, upTo: 300, epoch: 'e1' });
  assert.equal(r.takeGap('tapas'), null);
  assert.equal(r.observe(msg('tapas', 301)), true);
}
// A refused join is not tried again on the next connection.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const join = r.join('secret:room');
  r.observe({ type: 'error', id: join.id, code: 'forbidden' });
  r.observe(welcome(0, ''));
  assert.deepEqual(r.resume().filter((f) => f.type === 'join_room'), []);
}
// After a reconnect, the messages to a room wait for its join again: they
// go once it is accepted, in send order; a join refused for now is due
// again, the same frame; a private message does not wait.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const join = r.join('tapas');
  r.observe({ type: 'room_joined', id: join.id, room: 'tapas', offset: 0, epoch: 'e1' });
  const m1 = r.submit({ type: 'message', room: 'tapas', message: 'uno' });
  assert.ok(m1, 'a message to a joined room goes at once');
  const p = r.submit({ type: 'private_message', target_user: 'bob', message: 'psst' });
  r.observe(welcome(0, '')); // a new connection; nothing was acknowledged
  const frames = r.resume();
  const rejoin = frames.find((f) => f.type === 'join_room');
  assert.deepEqual(frames.filter((f) => f.message).map((f) => f.id), [p.id], 'the room\'s message waits for its join');
  assert.equal(r.submit({ type: 'message', room: 'tapas', message: 'dos' }), null, 'one sent meanwhile waits too');
  const refusal = { type: 'error', id: rejoin.id, code: 'unavailable', message: 'could not join' };
  r.observe(refusal);
  assert.equal(r.refusedForNow(refusal), true);
  assert.deepEqual(r.takeReady(), []);
  assert.deepEqual(r.takeFailed(), []);
  assert.deepEqual(r.retryFrames().map((f) => f.id), [rejoin.id, p.id], 'the join again, then what is not behind it');
  assert.deepEqual(r.retryFrames().map((f) => f.id), [p.id], 'a join is due once per refusal');
  r.observe({ type: 'room_joined', id: rejoin.id, room: 'tapas', offset: 0, epoch: 'e1' });
  assert.deepEqual(r.takeReady().map((f) => f.message), ['uno', 'dos'], 'in send order, once accepted');
  assert.deepEqual(r.takeReady(), [], 'once');
  assert.ok(r.submit({ type: 'message', room: 'tapas', message: 'tres' }), 'the room is joined: no wait');
}

// A join refused for good fails the messages waiting for it with its code
// and text, each once; a later not_in_room to that room carries them too;
// another room's messages go.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  for (const room of ['tapas', 'copas']) {
    const j = r.join(room);
    r.observe({ type: 'room_joined', id: j.id, room, offset: 0, epoch: 'e1' });
  }
  const m1 = r.submit({ type: 'message', room: 'tapas', message: 'uno' });
  const m2 = r.submit({ type: 'message', room: 'copas', message: 'dos' });
  r.observe(welcome(0, ''));
  const joins = r.resume().filter((f) => f.type === 'join_room');
  const [tapas, copas] = ['tapas', 'copas'].map((room) => joins.find((f) => f.room === room));
  const ban = { type: 'error', id: tapas.id, code: 'banned', message: 'banned from room "tapas"' };
  r.observe(ban);
  assert.equal(r.refusedForNow(ban), false);
  assert.equal(ban.room, 'tapas', 'the refusal names its room');
  assert.deepEqual(r.takeFailed().map((f) => [f.id, f.code, f.message]), [[m1.id, 'banned', 'banned from room "tapas"']]);
  assert.equal(r.pending.has(m1.id), false, 'failed: not sent again');
  r.observe({ type: 'room_joined', id: copas.id, room: 'copas', offset: 0, epoch: 'e1' });
  assert.deepEqual(r.takeReady().map((f) => f.id), [m2.id]);
  const m3 = r.submit({ type: 'message', room: 'tapas', message: 'tres' });
  assert.ok(m3, 'not joined any more: the server answers it');
  const answer = { type: 'error', id: m3.id, code: 'not_in_room', message: 'not in room' };
  r.observe(answer);
  assert.equal(answer.code, 'banned', 'not_in_room of a refused room carries the refusal');
  r.observe(welcome(0, ''));
  assert.deepEqual(r.resume().filter((f) => f.type === 'join_room').map((f) => f.room), ['copas'], 'a refused room is not joined again');
}
// On a live connection too, a message to a room waits for that room's
// join: already_in_room accepts it; leaving the room lets the messages go
// (the server answers them).
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const j = r.join('tapas');
  const m1 = r.submit({ type: 'message', room: 'tapas', message: 'uno' });
  assert.equal(m1, null, 'behind the join');
  assert.ok(r.submit({ type: 'message', message: 'lobby' }), 'a lobby message does not wait');
  r.observe({ type: 'error', id: j.id, code: 'already_in_room', message: 'already in room' });
  assert.deepEqual(r.takeReady().map((f) => f.message), ['uno']);
  const j2 = r.join('copas');
  r.submit({ type: 'message', room: 'copas', message: 'dos' });
  assert.equal(r.leave('copas')?.type, 'leave_room', 'its join may be accepted: the leave_room goes');
  assert.deepEqual(r.takeReady().map((f) => f.message), ['dos']);
  const late = { type: 'error', id: j2.id, code: 'rate_limited', message: 'too many joins' };
  r.observe(late);
  assert.equal(r.refusedForNow(late), false, 'nothing to send again');
  assert.deepEqual(r.retryFrames().filter((f) => f.type === 'join_room'), [], 'a room left is not joined again');
}
// The connection closes with a retry due: until the next welcome, nothing
// to a joined room is sent again (the new connection has not joined it).
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const j = r.join('tapas');
  r.observe({ type: 'room_joined', id: j.id, room: 'tapas', offset: 0, epoch: 'e1' });
  const m1 = r.submit({ type: 'message', room: 'tapas', message: 'uno' });
  assert.ok(m1);
  r.observe({ type: 'error', id: m1.id, code: 'unavailable', message: 'try later' });
  r.closed();
  assert.deepEqual(r.retryFrames(), [], 'the room\'s message does not go ahead of its join');
  assert.equal(r.submit({ type: 'message', room: 'tapas', message: 'dos' }), null, 'behind the join again');
  r.observe(welcome(0, ''));
  const frames = r.resume();
  assert.deepEqual(frames.map((f) => f.type), ['join_room', 'recover_private'], 'the join, not the messages');
}
// Leaving a room whose join is due again (refused for now) with messages
// waiting for it: they fail here, saying so, rather than going behind that
// join sent again at once (refused again, they were lost to a bare
// not_in_room); nothing is sent, not even the leave_room (the server
// would answer it with a bare not_in_room), nor sent again later. A room
// whose join was accepted, or has one still to be answered, is left with a
// leave_room.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const j = r.join('tapas');
  const m1 = { type: 'message', room: 'tapas', message: 'uno' };
  assert.equal(r.submit(m1), null);
  r.observe({ type: 'error', id: j.id, code: 'unavailable', message: 'could not join room "tapas"' });
  assert.equal(r.leave('tapas'), null, 'no leave_room: the server does not hold the connection in tapas');
  assert.deepEqual(r.takeReady(), [], 'nothing sent for the room left');
  assert.deepEqual(r.takeFailed().map((f) => [f.id, f.code, f.message]),
    [[m1.id, 'not_in_room', 'left room "tapas" before its join was accepted']], 'the message fails, saying why');
  assert.deepEqual(r.retryFrames().filter((f) => f.type === 'join_room'), [], 'and the join is not sent again');
  assert.equal(r.pending.size, 0);
  const k = r.join('copas');
  r.observe({ type: 'room_joined', id: k.id, room: 'copas', offset: 0, epoch: 'e1' });
  assert.equal(r.leave('copas')?.type, 'leave_room', 'a room joined is left with a leave_room');
  r.join('copas');
  assert.equal(r.leave('copas')?.type, 'leave_room', 'and so is one whose join is on its way');
  // Joined twice: the first join refused for now, the second still to be answered.
  const first = r.join('copas');
  r.join('copas');
  r.observe({ type: 'error', id: first.id, code: 'unavailable', message: 'could not join room "copas"' });
  assert.equal(r.leave('copas')?.type, 'leave_room', 'a join still to be answered may be accepted: the leave_room goes');
}
// Leaving a room whose join, refused for now, went again and is still to
// be answered: the messages waiting for it fail here, saying so, rather
// than go behind that join, likely refused again (each then failed with a
// bare not_in_room). The leave_room goes, with an id (that join may be
// accepted); a not_in_room answering it is not shown.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const j = r.join('tapas');
  const m1 = { type: 'message', room: 'tapas', message: 'uno' };
  const m2 = { type: 'message', room: 'tapas', message: 'dos' };
  assert.equal(r.submit(m1), null);
  assert.equal(r.submit(m2), null);
  r.observe({ type: 'error', id: j.id, code: 'unavailable', message: 'could not join room "tapas"' });
  assert.deepEqual(r.retryFrames().map((f) => f.id), [j.id]);
  const leave = r.leave('tapas');
  assert.equal(leave?.type, 'leave_room', 'the join sent again may be accepted: the leave_room goes');
  assert.ok(leave.id, 'with an id');
  assert.deepEqual(r.takeReady(), [], 'nothing sent behind the join sent again');
  const left = 'left room "tapas" before its join was accepted';
  assert.deepEqual(r.takeFailed().map((f) => [f.id, f.code, f.message]), [[m1.id, 'not_in_room', left], [m2.id, 'not_in_room', left]]);
  r.observe({ type: 'error', id: j.id, code: 'unavailable', message: 'could not join room "tapas"' });
  assert.deepEqual(r.retryFrames(), [], 'the room left is not joined again');
  assert.equal(r.observe({ type: 'error', id: leave.id, code: 'not_in_room', message: 'not in room "tapas"' }), false, 'the leave_room\'s not_in_room is not shown');
  assert.equal(r.observe({ type: 'error', id: leave.id, code: 'not_in_room', message: 'not in room "tapas"' }), true, 'once');
  // A join sent once, with no refusal, is not in doubt: its messages go.
  const k = r.join('copas');
  const m3 = { type: 'message', room: 'copas', message: 'tres' };
  assert.equal(r.submit(m3), null);
  assert.equal(r.leave('copas')?.type, 'leave_room');
  assert.deepEqual(r.takeReady().map((f) => f.id), [m3.id], 'they go before the leave_room');
  assert.deepEqual(r.takeFailed(), []);
  r.observe({ type: 'room_joined', id: k.id, room: 'copas', offset: 0, epoch: 'e1' });
}
// An answer to a join sent before its room was left is moot: the server
// carried out the leave after it. Joined again meanwhile, the room's
// messages wait for the new join; refused for now, that join is due.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const j1 = r.join('tapas');
  assert.equal(r.leave('tapas')?.type, 'leave_room', 'its join may be accepted');
  const j2 = r.join('tapas');
  r.observe({ type: 'room_joined', id: j1.id, room: 'tapas', offset: 0, epoch: 'e1' });
  const m1 = { type: 'message', room: 'tapas', message: 'uno' };
  assert.equal(r.submit(m1), null, 'the message waits for the join after the leave');
  r.observe({ type: 'error', id: j2.id, code: 'unavailable', message: 'could not join room "tapas"' });
  assert.deepEqual(r.retryFrames().map((f) => f.id), [j2.id], 'that join goes again, the message waits');
}
// A join refused for now and given up on (left, or joined again) is no
// answer to come: a kick after the room is joined again takes the room
// out, rather than waiting for that answer.
for (const giveUp of ['leave', 'join again']) {
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const j = r.join('tapas');
  r.observe({ type: 'error', id: j.id, code: 'rate_limited', message: 'too many joins' });
  if (giveUp === 'leave') r.leave('tapas');
  const j2 = r.join('tapas');
  r.observe({ type: 'room_joined', id: j2.id, room: 'tapas', offset: 0, epoch: 'e1' });
  r.observe({ type: 'room_left', room: 'tapas', user_id: 'u-alice', kicked: true, yours: true });
  assert.ok(!r.joined.has('tapas'), `${giveUp}: kicked out`);
  r.observe(welcome(0, ''));
  assert.ok(!r.resume().some((f) => f.type === 'join_room'), `${giveUp}: not joined again`);
}
// Kicked from a room (our own room_left, kicked and yours): it is not joined again on
// the next connection, a message to it is not held for a join, and what
// waited for a join of it fails; someone else's kick, or the copy about
// another session of ours (not marked yours), changes nothing.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  for (const room of ['tapas', 'copas']) {
    const j = r.join(room);
    r.observe({ type: 'room_joined', id: j.id, room, offset: 0, epoch: 'e1' });
  }
  r.observe({ type: 'room_left', room: 'copas', user_id: 'u-bob', kicked: true });
  // The copy about another session of ours, taken out too, is not ours.
  r.observe({ type: 'room_left', room: 'copas', user_id: 'u-alice', kicked: true });
  assert.ok(r.joined.has('copas'), 'the copy about our other session changes nothing');
  const again = r.join('tapas'); // joined again meanwhile: refused for now, due
  const m1 = { type: 'message', room: 'tapas', message: 'uno' };
  assert.equal(r.submit(m1), null);
  r.observe({ type: 'error', id: again.id, code: 'unavailable', message: 'could not join room "tapas"' });
  r.observe({ type: 'room_left', room: 'tapas', user_id: 'u-alice', kicked: true, yours: true, message: 'alice left room tapas' });
  assert.deepEqual(r.takeFailed().map((f) => [f.id, f.room, f.code, f.message]), [[m1.id, 'tapas', 'not_in_room', 'kicked from room "tapas"']]);
  assert.deepEqual(r.retryFrames().filter((f) => f.type === 'join_room'), [], 'its join is not due any more');
  assert.ok(r.submit({ type: 'message', room: 'tapas', message: 'dos' }), 'not held for a join: the server answers it');
  r.observe(welcome(0, ''));
  assert.deepEqual(r.resume().filter((f) => f.type === 'join_room').map((f) => f.room), ['copas'], 'the kick is not undone');
}
// A join still to be answered when our kick comes reached the server after
// it: the room stays joined and its messages wait for that join.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const first = r.join('tapas');
  r.observe({ type: 'room_joined', id: first.id, room: 'tapas', offset: 0, epoch: 'e1' });
  const again = r.join('tapas');
  const m1 = { type: 'message', room: 'tapas', message: 'uno' };
  assert.equal(r.submit(m1), null);
  r.observe({ type: 'room_left', room: 'tapas', user_id: 'u-alice', kicked: true, yours: true });
  assert.deepEqual(r.takeFailed(), []);
  assert.equal(r.joined.has('tapas'), true);
  r.observe({ type: 'room_joined', id: again.id, room: 'tapas', offset: 0, epoch: 'e1' });
  assert.deepEqual(r.takeReady().map((f) => f.id), [m1.id], 'it goes once that join is accepted');
}
// So too with an older join of the room due again: the newer one, still
// to be answered, reached the server after the kick.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const first = r.join('tapas');
  r.observe({ type: 'room_joined', id: first.id, room: 'tapas', offset: 0, epoch: 'e1' });
  const j1 = r.join('tapas');
  r.observe({ type: 'error', id: j1.id, code: 'rate_limited', message: 'too many joins' });
  r.retryFrames();
  const j2 = r.join('tapas');
  r.observe({ type: 'error', id: j1.id, code: 'rate_limited', message: 'too many joins' });
  r.observe({ type: 'room_left', room: 'tapas', user_id: 'u-alice', kicked: true, yours: true });
  assert.equal(r.joined.has('tapas'), true, 'a join is still to be answered: the room stays joined');
  const m1 = { type: 'message', room: 'tapas', message: 'uno' };
  assert.equal(r.submit(m1), null, 'a message waits for that join');
  r.observe({ type: 'room_joined', id: j2.id, room: 'tapas', offset: 0, epoch: 'e1' });
  assert.deepEqual(r.takeReady().map((f) => f.id), [m1.id]);
}
// The recover_private has an id: refused for now, it goes again (after the
// joins due, before the messages), until private_recovered answers it.
{
  const r = new Recovery();
  r.observe(welcome(3, 'i1'));
  const m = r.submit({ type: 'message', message: 'lobby' });
  r.observe(welcome(3, 'i1'));
  const recover = r.resume().find((f) => f.type === 'recover_private');
  assert.ok(recover.id, 'recover_private has an id');
  const refusal = { type: 'error', id: recover.id, code: 'unavailable', message: 'could not read the inbox' };
  r.observe(refusal);
  assert.equal(r.refusedForNow(refusal), true);
  assert.deepEqual(r.retryFrames().map((f) => f.id), [recover.id, m.id], 'the recover_private again, then the message');
  assert.deepEqual(r.retryFrames().map((f) => f.id), [m.id], 'once per refusal');
  r.observe({ type: 'private_recovered', id: recover.id, recovered: true, offset: 3, epoch: 'i1' });
  r.observe({ type: 'error', id: recover.id, code: 'unavailable' });
  assert.deepEqual(r.retryFrames().map((f) => f.id), [m.id], 'answered: not sent again');
}
// A join refused for now, sent again and refused again, then given up on
// for a newer join of its room refused for now too: the older one is not
// sent again, so no answer to it is to come. Leaving the room sends no
// leave_room (the server never let the connection in); a kick after the
// newer join's acceptance takes the room out.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const j1 = r.join('tapas');
  const m1 = { type: 'message', room: 'tapas', message: 'uno' };
  assert.equal(r.submit(m1), null);
  r.observe({ type: 'error', id: j1.id, code: 'unavailable', message: 'could not join room "tapas"' });
  assert.deepEqual(r.retryFrames().map((f) => f.id), [j1.id]);
  const j2 = r.join('tapas'); // typed again while j1 is on its way
  r.observe({ type: 'error', id: j1.id, code: 'unavailable', message: 'could not join room "tapas"' });
  r.observe({ type: 'error', id: j2.id, code: 'unavailable', message: 'could not join room "tapas"' });
  assert.deepEqual(r.retryFrames().map((f) => f.id), [j2.id], 'the newer join goes again, not the older');
  r.observe({ type: 'error', id: j2.id, code: 'unavailable', message: 'could not join room "tapas"' });
  assert.equal(r.leave('tapas'), null, 'no leave_room: no join of tapas is to be answered');
  assert.deepEqual(r.takeFailed().map((f) => f.id), [m1.id]);

  const k1 = r.join('copas');
  r.observe({ type: 'error', id: k1.id, code: 'unavailable', message: 'could not join room "copas"' });
  r.retryFrames();
  const k2 = r.join('copas');
  r.observe({ type: 'error', id: k1.id, code: 'unavailable', message: 'could not join room "copas"' });
  r.observe({ type: 'room_joined', id: k2.id, room: 'copas', offset: 0, epoch: 'e1' });
  r.observe({ type: 'room_left', room: 'copas', user_id: 'u-alice', kicked: true, yours: true });
  assert.ok(!r.joined.has('copas'), 'kicked out: the older join, refused and not sent again, is no answer to come');
}
// The joins of a connection that ended are forgotten on the next one.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const old = [r.join('tapas')];
  for (let i = 0; i < 3; i++) {
    r.observe(welcome(0, ''));
    old.push(...r.resume().filter((f) => f.type === 'join_room'));
  }
  const now = old.pop();
  for (const j of old) {
    const refused = refusal(j);
    r.observe(refused);
    assert.equal(r.refusedForNow(refused), false, 'a join of an earlier connection is not sent again');
  }
  assert.deepEqual(r.retryFrames().filter((f) => f.type === 'join_room'), []);
  r.observe(refusal(now));
  assert.deepEqual(r.retryFrames().map((f) => f.id), [now.id], 'the join of the current connection goes again');
}
// Two rooms' joins refused for now, the later one first: they go again in
// join order (as the Go client's nextDue), not in the order they were refused.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const j1 = r.join('tapas');
  const k1 = r.join('copas');
  r.observe(refusal(k1));
  r.observe(refusal(j1));
  assert.deepEqual(r.retryFrames().map((f) => f.id), [j1.id, k1.id], 'in join order');
}
// A room joined, then joined again (by a page other than rooms.html, which
// does not rejoin the room on screen) and that join refused for now (the
// server limits the rate of joins before it looks at membership): the
// server still holds the connection in the room, so leaving it sends a
// leave_room; the message that waited for the join again fails, saying so.
// After a kick, or a leave, the room is no longer one to send a leave_room
// for.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const j1 = r.join('tapas');
  r.observe({ type: 'room_joined', id: j1.id, room: 'tapas', offset: 0, epoch: 'e1' });
  const j2 = r.join('tapas');
  const m1 = { type: 'message', room: 'tapas', message: 'uno' };
  assert.equal(r.submit(m1), null, 'the message waits for the join again');
  r.observe({ type: 'error', id: j2.id, code: 'rate_limited', message: 'too many joins' });
  assert.equal(r.leave('tapas')?.type, 'leave_room', 'in the room still: the leave_room goes');
  assert.deepEqual(r.takeFailed().map((f) => [f.id, f.message]), [[m1.id, 'left room "tapas" before its join was accepted']]);
  assert.equal(r.leave('tapas'), null, 'left already');
  const k1 = r.join('copas');
  r.observe({ type: 'room_joined', id: k1.id, room: 'copas', offset: 0, epoch: 'e1' });
  const k2 = r.join('copas');
  r.observe({ type: 'error', id: k2.id, code: 'rate_limited', message: 'too many joins' });
  r.observe({ type: 'room_left', room: 'copas', user_id: 'u-alice', kicked: true, yours: true });
  assert.equal(r.leave('copas'), null, 'kicked out: no leave_room');
}
// Joined twice, the first join refused for now, the second for good: the
// first is not sent again, so no answer to it is to come, and the server
// never let the connection in. Leaving sends no leave_room.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const j1 = r.join('tapas');
  const j2 = r.join('tapas');
  r.observe(refusal(j1));
  r.observe(refusal(j2, 'banned'));
  assert.deepEqual(r.retryFrames(), [], 'the join refused for now is not sent again');
  assert.equal(r.leave('tapas'), null, 'no leave_room: no join of tapas was accepted or is to be answered');
}
// A join refused for now, due, then the connection ends: the join is given
// up (resume sends a new one), so leaving the room before the next welcome
// (a page other than rooms.html may) sends no leave_room: the server never
// let the connection in.
{
  const r = new Recovery();
  r.observe(welcome(0, ''));
  const j1 = r.join('tapas');
  r.observe(refusal(j1));
  r.closed();
  assert.equal(r.leave('tapas'), null, 'no leave_room: no join of tapas was accepted or is to be answered');
}
console.log('OK');
