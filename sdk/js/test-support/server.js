// A real Parley on a loopback port for the SDK's tests, with small helpers playing the
// App Server over REST. Each test file starts its own server and stops it at the end.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const PYTHON = process.env.PARLEY_PYTHON ?? join(ROOT, '.venv', 'bin', 'python');
const ADMIN_TOKEN = 'sdk-test-admin-token';

export const md5 = (text) => createHash('md5').update(text).digest('hex');

function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

export async function startServer(settings = {}) {
  const folder = mkdtempSync(join(tmpdir(), 'parley-js-sdk-'));
  const port = await freePort();
  const env = {
    ...process.env,
    PARLEY_DATABASE_URL: `sqlite+aiosqlite:///${join(folder, 'parley.db')}`,
    PARLEY_PORT: String(port),
    PARLEY_ADMIN_TOKEN: ADMIN_TOKEN,
    PARLEY_LOG_LEVEL: 'WARNING',
    // Bursts in these tests are far above a person's typing; the limits are not under test.
    PARLEY_SEND_RATE_PER_SECOND: '1000',
    PARLEY_SEND_BURST: '1000',
    PARLEY_MAX_FRAMES_PER_SECOND: '1000',
    PARLEY_REAPER_TICK_SECONDS: '0.2',
  };
  for (const [key, value] of Object.entries(settings)) env[`PARLEY_${key}`] = String(value);
  const child = spawn(PYTHON, ['-m', 'app', 'serve'], { cwd: ROOT, env, stdio: 'pipe' });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const server = new Server(child, port, folder, () => log);
  await server.waitReady();
  return server;
}

class Server {
  constructor(child, port, folder, log) {
    this.child = child;
    this.baseUrl = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}/ws`;
    this.folder = folder;
    this.log = log;
  }

  async waitReady() {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`server exited:\n${this.log()}`);
      try {
        if ((await fetch(`${this.baseUrl}/readyz`)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`server not ready:\n${this.log()}`);
  }

  async stop() {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
    rmSync(this.folder, { recursive: true, force: true });
  }

  async createApp() {
    const reply = await fetch(`${this.baseUrl}/admin/apps`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'js-sdk-test' }),
    });
    const body = await reply.json();
    return new AppServer(this.baseUrl, body.app_key, body.app_secret);
  }
}

/** The App Server's REST calls the tests need. */
class AppServer {
  constructor(baseUrl, key, secret) {
    this.baseUrl = baseUrl;
    this.key = key;
    this.auth = `Basic ${Buffer.from(`${key}:${secret}`).toString('base64')}`;
  }

  async call(method, path, body) {
    const reply = await fetch(this.baseUrl + path, {
      method,
      headers: { authorization: this.auth, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await reply.text();
    if (!reply.ok) throw new Error(`${method} ${path}: ${reply.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  async users(...rawIds) {
    await this.call('POST', '/v1/users/import', { users: rawIds.map((u) => ({ user_id: u })) });
    return rawIds.map(md5);
  }

  async token(user, ttlSeconds) {
    const body = ttlSeconds ? { ttl_seconds: ttlSeconds } : {};
    return (await this.call('POST', `/v1/users/${user}/tokens`, body)).token;
  }
}
