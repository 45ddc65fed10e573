import { describe, expect, it } from 'vitest';
import { RunningMutations } from './idempotency.js';

/** A mutation that runs until released. */
function held() {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  return { done, release };
}

describe('RunningMutations: the idempotent mutations one app runs, handed in rather than kept in the module', () => {
  it('a drain waits for the mutations its own registry tracks, and for no other', async () => {
    const mine = new RunningMutations();
    const another = new RunningMutations();
    const a = held();
    const b = held();
    const events: string[] = [];
    const tracked = mine.track(a.done.then(() => events.push('mine finished')));
    void another.track(b.done);
    // The other registry's mutation never finishes in this test: a shared set would hang this drain.
    const drained = mine.drain(60_000).then(() => events.push('drained'));
    await new Promise((r) => setImmediate(r));
    events.push('released');
    a.release();
    await Promise.all([tracked, drained]);
    expect(events).toEqual(['released', 'mine finished', 'drained']);
    await another.drain(0);
    b.release();
  });

  it('a mutation that fails is waited for too, and its failure is still the caller’s', async () => {
    const running = new RunningMutations();
    const failing = running.track(Promise.reject(new Error('refused')));
    await expect(failing).rejects.toThrow('refused');
    await running.drain(60_000);
  });
});
