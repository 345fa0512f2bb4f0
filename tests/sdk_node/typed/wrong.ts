// Must NOT type-check: the collection and the field do not exist in the Schema.
import { createDirectus, readItems, rest } from '@directus/sdk';
import type { Schema } from './schema.js';

const client = createDirectus<Schema>('http://127.0.0.1:8055/api').with(rest());

export async function wrong(): Promise<void> {
  await client.request(readItems('nope', {}));
  const rows = await client.request(readItems('posts', { fields: ['title'] }));
  const n: number = rows[0].title;
  void n;
}
