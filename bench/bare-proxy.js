// The floor of any Node.js gateway: an HTTP server that forwards each request to the provider
// over a keep-alive undici pool and streams the answer back, doing nothing else. Started by
// bench/run.js as `node bench/bare-proxy.js <provider origin>`; reports its port over IPC.
'use strict';
const { createServer } = require('node:http');
const { Pool } = require('undici');

const upstream = new Pool(process.argv[2], { connections: 256, pipelining: 1 });

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    upstream
      .request({
        method: req.method,
        path: req.url,
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json', authorization: 'Bearer sk-bench' },
        body: Buffer.concat(chunks),
      })
      .then(async (up) => {
        res.writeHead(up.statusCode, { 'content-type': up.headers['content-type'] ?? 'application/json' });
        for await (const chunk of up.body) res.write(chunk);
        res.end();
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send(server.address().port));
process.on('disconnect', () => process.exit(0));
