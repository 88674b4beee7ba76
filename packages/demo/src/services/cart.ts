/**
 * The cart service: carts in a real SQLite database (node:sqlite), traced by @sonde/node's sqlite
 * instrumentation with no code here. 1% of writes fail (a simulated busy database).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import express from 'express';
import { chance, listen, logger } from './common';

const log = logger('cart');
const file = process.env.CART_DB ?? path.join(os.tmpdir(), `sonde-demo-cart-${process.pid}.db`);
const db = new DatabaseSync(file);
db.exec(`
  PRAGMA journal_mode = WAL;
  CREATE TABLE IF NOT EXISTS cart_items (
    user_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    qty INTEGER NOT NULL,
    price_cents INTEGER NOT NULL,
    PRIMARY KEY (user_id, sku)
  );
`);
const addItem = db.prepare(
  'INSERT INTO cart_items (user_id, sku, qty, price_cents) VALUES (?, ?, ?, ?) ON CONFLICT(user_id, sku) DO UPDATE SET qty = qty + excluded.qty',
);
const listItems = db.prepare('SELECT sku, qty, price_cents FROM cart_items WHERE user_id = ? ORDER BY sku');
const countItems = db.prepare('SELECT COALESCE(SUM(qty), 0) AS items FROM cart_items WHERE user_id = ?');
const clearCart = db.prepare('DELETE FROM cart_items WHERE user_id = ?');

const app = express();
app.use(express.json());

app.post('/carts/:user/items', (req, res) => {
  const { sku, qty, priceCents } = req.body as { sku?: string; qty?: number; priceCents?: number };
  if (!sku || !Number.isInteger(qty) || !Number.isInteger(priceCents)) {
    res.status(400).json({ error: 'sku, qty and priceCents are required' });
    return;
  }
  if (chance(0.01)) throw new Error('database is locked (simulated)');
  addItem.run(req.params.user, sku, qty!, priceCents!);
  res.status(201).json({ ok: true });
});

app.get('/carts/:user', (req, res) => {
  const items = listItems.all(req.params.user) as { sku: string; qty: number; price_cents: number }[];
  res.json({ items, totalCents: items.reduce((sum, i) => sum + i.qty * i.price_cents, 0) });
});

app.get('/carts/:user/count', (req, res) => {
  res.json(countItems.get(req.params.user));
});

app.delete('/carts/:user', (req, res) => {
  clearCart.run(req.params.user);
  res.status(204).end();
});

app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
  log.error({ err: err.message }, 'cart request failed');
  res.status(500).json({ error: err.message });
});

listen(app, 'cart');
process.once('exit', () => db.close());
