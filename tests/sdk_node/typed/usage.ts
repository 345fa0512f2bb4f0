// Type-checked by tests/sdk/test_typegen.py (tsc --noEmit) against the Schema
// that `workeros typegen --lang typescript` wrote to typed/schema.ts.
import { createDirectus, createItem, readItems, rest, staticToken } from '@directus/sdk';
import type { Posts, Schema } from './schema.js';

const client = createDirectus<Schema>('http://127.0.0.1:8055/api').with(staticToken('pak_x')).with(rest());

export async function typed(): Promise<string[]> {
  const rows = await client.request(readItems('posts', { fields: ['id', 'title', { author: ['name'] }] }));
  const titles: (string | null)[] = rows.map((row) => row.title);
  const created: Posts = await client.request(createItem('posts', { title: 'x', score: 1 })) as Posts;
  void created;
  return titles.filter((t): t is string => t !== null);
}
