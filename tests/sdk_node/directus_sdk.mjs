// Drives @directus/sdk against a running workeros server.
//
//   node directus_sdk.mjs <base url, e.g. http://127.0.0.1:8055> <admin email> <admin password>
//
// Prints one JSON line per check ({"check": name, "ok": true|false, "error"?}) and
// exits 1 when any failed. tests/sdk/test_directus_sdk.py runs it against a real
// server on each database and compares the checks against the list it expects.
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import {
  aggregate, authentication, createDirectus, createItem, createItems, deleteItem, deleteItems, graphql,
  readItem, readItems, readMe, readOpenApiSpec, readProviders, readUsers, realtime, refresh, rest,
  serverInfo, serverPing, staticToken, updateItem, updateItems, updateItemsBatch, withSearch,
} from '@directus/sdk';

const [base, email, password] = process.argv.slice(2);
const api = `${base}/api`;
const wsBase = base.replace(/^http/, 'ws');
const globals = { WebSocket };
let failed = 0;

async function check(name, body) {
  try {
    await body();
    console.log(JSON.stringify({ check: name, ok: true }));
  } catch (error) {
    failed += 1;
    const detail = error?.errors ? JSON.stringify(error.errors) : String(error?.stack ?? error);
    console.log(JSON.stringify({ check: name, ok: false, error: detail.slice(0, 2000) }));
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Waits for the next subscription message of an SDK subscription generator.
async function next(subscription, ms = 10000) {
  const timeout = sleep(ms).then(() => { throw new Error(`no realtime message within ${ms} ms`); });
  const result = await Promise.race([subscription.next(), timeout]);
  assert.equal(result.done, false, 'the subscription ended');
  return result.value;
}

// A fetch keeping cookies, as a browser would for credentials: 'include'.
function cookieFetch() {
  const jar = new Map();
  const fetchWithJar = async (url, init = {}) => {
    const headers = new Headers(init.headers ?? {});
    if (jar.size) headers.set('Cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(url, { ...init, headers });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair.indexOf('=');
      const value = pair.slice(at + 1);
      if (value === '' || /max-age=0/i.test(line)) jar.delete(pair.slice(0, at)); else jar.set(pair.slice(0, at), value);
    }
    return response;
  };
  fetchWithJar.jar = jar;
  return fetchWithJar;
}

async function setUp() {
  const call = async (method, path, body, token) => {
    const response = await fetch(`${api}${path}`, {
      method, headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return text ? JSON.parse(text).data : null;
  };
  await call('POST', '/auth/sign-up', { email, password });
  // a fresh access token per call: they are short-lived on the test server
  const admin = async (method, path, body) => {
    const { access_token: token } = await call('POST', '/auth/login', { email, password, mode: 'json' });
    return call(method, path, body, token);
  };
  await admin('POST', '/collections', { collection: 'authors', fields: [{ field: 'name', type: 'string' }] });
  await admin('POST', '/collections', {
    collection: 'posts',
    fields: [{ field: 'title', type: 'string' }, { field: 'status', type: 'string' }, { field: 'score', type: 'integer' }],
  });
  await admin('POST', '/relations', { collection: 'posts', field: 'author', related_collection: 'authors' });
  const me = await admin('GET', '/users/me');
  const key = await admin('POST', '/api-keys', { name: 'sdk', user: me.id });
  return key.key;
}

const apiKey = await setUp();
const admin = createDirectus(api, { globals }).with(staticToken(apiKey)).with(rest()).with(graphql());

// ---------------------------------------------------------------------- what already worked
const json = createDirectus(api, { globals }).with(authentication('json')).with(rest()).with(graphql());

let firstRefresh;
await check('login json mode', async () => {
  const session = await json.login(email, password);
  assert.ok(session.access_token);
  assert.ok(session.refresh_token);
  firstRefresh = session.refresh_token;
});

await check('refresh json mode', async () => {
  const session = await json.refresh();
  assert.ok(session.access_token);
  assert.notEqual(session.refresh_token, firstRefresh); // rotated
  const me = await json.request(readMe());
  assert.equal(me.email, email);
});

await check('readMe', async () => {
  const me = await json.request(readMe());
  assert.equal(me.email, email);
});

let authorId;
await check('createItem and readItem', async () => {
  const author = await admin.request(createItem('authors', { name: 'Ada' }));
  authorId = author.id;
  const again = await admin.request(readItem('authors', author.id));
  assert.equal(again.name, 'Ada');
});

let postIds = [];
await check('createItems', async () => {
  const created = await admin.request(createItems('posts', [
    { title: 'one', status: 'published', score: 1, author: authorId },
    { title: 'two', status: 'draft', score: 2, author: authorId },
    { title: 'three', status: 'published', score: 3, author: authorId },
  ]));
  assert.equal(created.length, 3);
  postIds = created.map((p) => p.id);
});

await check('readItems with filter, sort, limit and relational fields', async () => {
  const rows = await admin.request(readItems('posts', {
    filter: { status: { _eq: 'published' } }, sort: ['-score'], limit: 5, fields: ['id', 'title', { author: ['name'] }],
  }));
  assert.deepEqual(rows.map((r) => r.title), ['three', 'one']);
  assert.equal(rows[0].author.name, 'Ada');
});

await check('updateItem', async () => {
  const row = await admin.request(updateItem('posts', postIds[0], { score: 10 }));
  assert.equal(row.score, 10);
});

await check('updateItems by keys', async () => {
  const rows = await admin.request(updateItems('posts', postIds.slice(0, 2), { status: 'archived' }));
  assert.equal(rows.length, 2);
  assert.ok(rows.every((r) => r.status === 'archived'));
});

await check('aggregate with groupBy', async () => {
  const groups = await admin.request(aggregate('posts', { aggregate: { count: '*' }, groupBy: ['status'] }));
  const byStatus = Object.fromEntries(groups.map((g) => [g.status, Number(g.count)]));
  assert.deepEqual(byStatus, { archived: 2, published: 1 });
});

await check('staticToken with an API key', async () => {
  const me = await admin.request(readMe());
  assert.equal(me.email, email);
});

await check('graphql on items', async () => {
  const data = await admin.query('query { posts(sort: ["id"]) { id title } }');
  assert.equal(data.posts.length, 3);
});

await check('deleteItem and deleteItems by keys', async () => {
  const extra = await admin.request(createItems('posts', [{ title: 'x' }, { title: 'y' }, { title: 'z' }]));
  await admin.request(deleteItem('posts', extra[0].id));
  await admin.request(deleteItems('posts', [extra[1].id, extra[2].id]));
  const left = await admin.request(readItems('posts', { filter: { title: { _in: ['x', 'y', 'z'] } } }));
  assert.equal(left.length, 0);
});

await check('realtime at /api/realtime, handshake mode', async () => {
  const client = createDirectus(api, { globals }).with(staticToken(apiKey))
    .with(realtime({ url: `${wsBase}/api/realtime`, reconnect: false }));
  await client.connect();
  try {
    const { subscription } = await client.subscribe('posts', { query: { fields: ['id', 'title'] } });
    assert.equal((await next(subscription)).event, 'init');
    await admin.request(createItem('posts', { title: 'live' }));
    const message = await next(subscription);
    assert.equal(message.event, 'create');
    assert.equal(message.data[0].title, 'live');
  } finally {
    client.disconnect();
  }
});

// ---------------------------------------------------------------------- what was fixed
await check('realtime default URL (/websocket)', async () => {
  const client = createDirectus(api, { globals }).with(staticToken(apiKey)).with(realtime({ reconnect: false }));
  await client.connect();
  try {
    const { subscription } = await client.subscribe('authors');
    assert.equal((await next(subscription)).event, 'init');
  } finally {
    client.disconnect();
  }
});

await check('subscribe to delete events only, which carry the keys', async () => {
  const client = createDirectus(api, { globals }).with(staticToken(apiKey)).with(realtime({ reconnect: false }));
  await client.connect();
  try {
    const { subscription } = await client.subscribe('posts', { event: 'delete' });
    assert.equal((await next(subscription)).event, 'init');
    const row = await admin.request(createItem('posts', { title: 'short-lived' }));
    await admin.request(updateItem('posts', row.id, { title: 'renamed' }));
    await admin.request(deleteItem('posts', row.id));
    const message = await next(subscription);
    assert.equal(message.event, 'delete');
    assert.deepEqual(message.data, [row.id]);
  } finally {
    client.disconnect();
  }
});

await check('realtime strict mode (?access_token= on the upgrade)', async () => {
  const client = createDirectus(api, { globals }).with(staticToken(apiKey))
    .with(realtime({ authMode: 'strict', reconnect: false }));
  await client.connect();
  try {
    const { subscription } = await client.subscribe('posts', { query: { fields: ['id'] } });
    assert.equal((await next(subscription)).event, 'init');
  } finally {
    client.disconnect();
  }
});

await check('TOKEN_EXPIRED: the SDK re-authenticates in place, the subscription lives on', async () => {
  const client = createDirectus(api, { globals }).with(authentication('json')).with(rest())
    .with(realtime({ reconnect: false }));
  await client.login(email, password);
  await client.connect();
  let closed = false;
  client.onWebSocket('close', () => { closed = true; });
  const seen = [];
  client.onWebSocket('message', (m) => { if (m.type === 'auth') seen.push(m); });
  try {
    const { subscription } = await client.subscribe('posts', { query: { fields: ['id', 'title'] } });
    assert.equal((await next(subscription)).event, 'init');
    const ttl = Number(process.env.WOS_ACCESS_TOKEN_TTL ?? '3');
    await sleep((ttl + 1.5) * 1000); // past the access token's expiry
    await admin.request(createItem('posts', { title: 'after expiry' }));
    const message = await next(subscription);
    assert.equal(message.event, 'create');
    assert.equal(message.data[0].title, 'after expiry');
    assert.equal(closed, false);
    // the SDK answers TOKEN_EXPIRED itself (it sends a fresh token); the server's "ok" is what shows
    assert.ok(seen.some((m) => m.status === 'ok'), JSON.stringify(seen));
  } finally {
    client.disconnect();
  }
});

await check('cookie mode: login, refresh from the session cookie, logout', async () => {
  const fetchWithJar = cookieFetch();
  const client = createDirectus(api, { globals: { ...globals, fetch: fetchWithJar } })
    .with(authentication('cookie', { credentials: 'include', autoRefresh: false })).with(rest({ credentials: 'include' }));
  await client.login(email, password);
  const first = await client.getToken();
  assert.ok(first);
  const session = await client.refresh();
  assert.ok(session.access_token);
  const me = await client.request(readMe());
  assert.equal(me.email, email);
  await client.logout();
  await assert.rejects(client.request(refresh('cookie')));
});

await check('session mode: the cookie is the credential', async () => {
  const fetchWithJar = cookieFetch();
  const client = createDirectus(api, { globals: { ...globals, fetch: fetchWithJar } })
    .with(authentication('session', { credentials: 'include', autoRefresh: false })).with(rest({ credentials: 'include' }));
  const session = await client.login(email, password, { mode: 'session' });
  assert.ok(!session.access_token);
  assert.ok(fetchWithJar.jar.size > 0);
  const me = await client.request(readMe());
  assert.equal(me.email, email);
  const renewed = await client.refresh();
  assert.ok(!renewed.access_token);
  assert.ok(renewed.expires > 0);
});

await check('fields on /users/me and /users', async () => {
  const me = await admin.request(readMe({ fields: ['id', 'email'] }));
  assert.deepEqual(Object.keys(me).sort(), ['email', 'id']);
  const users = await admin.request(readUsers({ fields: ['email'] }));
  assert.deepEqual(users.map((u) => Object.keys(u)), [['email']]);
});

await check('deleteItems by query filter', async () => {
  await admin.request(createItems('posts', [{ title: 'gone', status: 'spam' }, { title: 'gone too', status: 'spam' }]));
  await admin.request(deleteItems('posts', { filter: { status: { _eq: 'spam' } } }));
  const left = await admin.request(readItems('posts', { filter: { status: { _eq: 'spam' } } }));
  assert.equal(left.length, 0);
});

await check('updateItemsBatch (an array of items with their keys)', async () => {
  const rows = await admin.request(updateItemsBatch('posts', [
    { id: postIds[0], title: 'first' }, { id: postIds[1], title: 'second' },
  ]));
  assert.deepEqual(rows.map((r) => r.title).sort(), ['first', 'second']);
});

await check('SEARCH with a query body (withSearch)', async () => {
  const rows = await admin.request(withSearch(readItems('posts', {
    filter: { id: { _in: postIds } }, sort: ['id'], fields: ['id', 'title'], limit: 2,
  })));
  assert.deepEqual(rows.map((r) => r.title), ['first', 'second']);
});

await check('server ping, info, OpenAPI spec; GET /auth', async () => {
  assert.equal(await admin.request(serverPing()), 'pong');
  const info = await admin.request(serverInfo());
  assert.ok(info.project);
  const spec = await admin.request(readOpenApiSpec());
  assert.ok(spec.openapi.startsWith('3.'));
  assert.ok(spec.paths['/items/posts'] || Object.keys(spec.paths).some((p) => p.endsWith('/items/posts')));
  const providers = await admin.request(readProviders());
  assert.ok(Array.isArray(providers));
});

await check('graphql system endpoint', async () => {
  const data = await admin.query('query { posts(limit: 1) { id } }', undefined, 'system');
  assert.equal(data.posts.length, 1);
});

await check('logout json mode', async () => {
  await json.logout();
  await assert.rejects(json.request(readMe()));
});

process.exit(failed ? 1 : 0);
