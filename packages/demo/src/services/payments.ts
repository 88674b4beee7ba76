/** The payments service: 20-150 ms per payment, 4% declined (402), 1% processor errors (503). */
import express from 'express';
import { chance, latency, listen, logger, sleep } from './common';

const log = logger('payments');
const app = express();
app.use(express.json());
let next = 1;

app.post('/payments', async (req, res) => {
  const { amountCents } = req.body as { amountCents?: number };
  if (!Number.isInteger(amountCents) || amountCents! <= 0) {
    res.status(400).json({ error: 'amountCents must be a positive integer' });
    return;
  }
  await sleep(latency(20, 150));
  if (chance(0.01)) {
    log.error('payment processor unavailable');
    res.status(503).json({ status: 'error', reason: 'processor_unavailable' });
    return;
  }
  if (chance(0.04)) {
    log.warn({ amountCents }, 'payment declined');
    res.status(402).json({ status: 'declined', reason: 'card_declined' });
    return;
  }
  res.json({ status: 'paid', paymentId: `pay_${next++}` });
});

listen(app, 'payments');
