// goleak-style options of verifyNoLeaks, on real loopback sockets in this process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  configureTestChecks,
  findLeaks,
  ignoreCurrent,
  ignoreLocation,
  ignoreRemote,
  InvalidSettingError,
  SocketLeakError,
  start,
  stop,
  verifyNoLeaks,
} from '../src/index';
import { closeAll, leakOne, quietServer, silentClient, waitFor } from './loopback';

const rejection = (options: Parameters<typeof verifyNoLeaks>[0]) => verifyNoLeaks(options).then(() => null, (error: unknown) => error);

beforeAll(() => {
  start({ intervalMs: 60_000, closeWaitMs: 60_000, output: 'none' });
});
afterAll(() => {
  closeAll();
  stop();
});

describe('verifyNoLeaks() options', () => {
  it('ignoreLocation() leaves out sockets created at a matching place, and only those', async () => {
    const socket = await leakOne();
    await waitFor('the leak', () => findLeaks().length > 0);
    await expect(verifyNoLeaks({ timeoutMs: 50, ignore: ignoreLocation('test/loopback.ts') })).resolves.toBeUndefined();
    await expect(verifyNoLeaks({ timeoutMs: 50, ignore: [ignoreLocation(/loopback\.ts:\d+/)] })).resolves.toBeUndefined();
    expect(await rejection({ timeoutMs: 50, ignore: [ignoreLocation('some/other/file.js')] })).toBeInstanceOf(SocketLeakError);
    socket.destroy();
  });

  it('ignoreRemote() leaves out connections to a matching peer, and only those', async () => {
    const socket = await leakOne();
    await waitFor('the leak', () => findLeaks().length > 0);
    const port = socket.remotePort!;
    await expect(verifyNoLeaks({ timeoutMs: 50, ignore: [ignoreRemote({ port })] })).resolves.toBeUndefined();
    await expect(verifyNoLeaks({ timeoutMs: 50, ignore: [ignoreRemote({ host: 'localhost' })] })).resolves.toBeUndefined();
    await expect(verifyNoLeaks({ timeoutMs: 50, ignore: [ignoreRemote({ host: '127.0.0.1', port })] })).resolves.toBeUndefined();
    expect(await rejection({ timeoutMs: 50, ignore: [ignoreRemote({ port: port === 1 ? 2 : port - 1 })] })).toBeInstanceOf(SocketLeakError);
    expect(await rejection({ timeoutMs: 50, ignore: [ignoreRemote({ host: '10.1.2.3' })] })).toBeInstanceOf(SocketLeakError);
    socket.destroy();
  });

  it('ignoreCurrent() leaves out what was open when it was called, not what came after', async () => {
    const before = await leakOne();
    await waitFor('the first leak', () => findLeaks().length > 0);
    const ignore = ignoreCurrent();
    await expect(verifyNoLeaks({ timeoutMs: 50, ignore })).resolves.toBeUndefined();
    const after = await leakOne();
    await waitFor('the second leak', () => findLeaks().length > 1);
    const error = (await rejection({ timeoutMs: 50, ignore })) as SocketLeakError;
    expect(error).toBeInstanceOf(SocketLeakError);
    expect(error.leaks.map((leak) => leak.fd)).toEqual([(after as unknown as { _handle: { fd: number } })._handle.fd]);
    before.destroy();
    after.destroy();
  });

  it('strict also fails on a healthy connection left open, as a left-open report naming the line; closing it passes', async () => {
    const { socket } = await silentClient(await quietServer());
    await expect(verifyNoLeaks({ timeoutMs: 50 })).resolves.toBeUndefined();
    const error = (await rejection({ timeoutMs: 50, strict: true })) as SocketLeakError;
    expect(error).toBeInstanceOf(SocketLeakError);
    const mine = error.leaks.filter((leak) => leak.remote?.port === socket.remotePort);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ kind: 'left-open', state: 'ESTABLISHED', origin: 'client' });
    expect(error.message.split('\n')[0]).toMatch(/loopback\.ts:\d+:\d+.*: TCP socket left open at the end of its test \(strict check\)$/);
    expect(error.message).toContain('What to do: close it before the test ends');
    socket.destroy();
    // The server's side of the connection is tracked too (accepted sockets): strict counts it until it closes.
    await expect(verifyNoLeaks({ timeoutMs: 2000, strict: true, ignore: ignoreRemote({ host: 'localhost' }) })).resolves.toBeUndefined();
  });
});

describe('bad check options get one clear message naming the setting', () => {
  it('verifyNoLeaks() rejects with InvalidSettingError', async () => {
    const strict = await rejection({ strict: 'yes' as unknown as boolean });
    expect(strict).toBeInstanceOf(InvalidSettingError);
    expect((strict as Error).message).toBe('verifyNoLeaks.strict="yes" is not accepted: expected true or false');
    const ignore = await rejection({ ignore: ['db.js' as never] });
    expect((ignore as Error).message).toMatch(/^verifyNoLeaks\.ignore="db\.js" is not accepted: expected what ignoreLocation\(\), ignoreRemote\(\) or ignoreCurrent\(\) return$/);
    expect(((await rejection({ timeout: 5 } as never)) as Error).message).toMatch(/^verifyNoLeaks\.timeout=5 is not accepted: unknown option/);
  });

  it('the ignore makers and configureTestChecks() throw InvalidSettingError', () => {
    expect(() => ignoreRemote({ port: 70000 })).toThrow('ignoreRemote.port=70000 is not accepted: expected a whole number from 1 to 65535');
    expect(() => ignoreRemote({})).toThrow(/^ignoreRemote=\{\} is not accepted/);
    expect(() => ignoreLocation('')).toThrow('ignoreLocation="" is not accepted: expected a non-empty string or a RegExp');
    expect(() => configureTestChecks({ timeoutMs: -1 })).toThrow(/^configureTestChecks\.timeoutMs=-1 is not accepted/);
  });
});
