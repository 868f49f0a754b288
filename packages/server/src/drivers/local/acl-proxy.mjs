#!/usr/bin/env node
// Kumo's source-address filter for engines that cannot filter by address themselves (Redis).
// Plain JavaScript with no dependencies so that it starts in milliseconds and runs detached from
// Kumo, as the service user: client connections survive a restart of Kumo.
//
//   node acl-proxy.mjs <config.json>
//
// config.json: { "listen": {"host", "port"}, "target": {"path"}, "allow": ["203.0.113.0/24", ...] }
// SIGHUP re-reads the allow list (applied to new connections). Writes its pid next to config.json.
import console from 'node:console';
import process from 'node:process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';

const configFile = process.argv[2];
let config = JSON.parse(readFileSync(configFile, 'utf8'));
let allow = toBlockList(config.allow);

function toBlockList(cidrs) {
  const list = new net.BlockList();
  for (const cidr of cidrs) {
    const [address, prefix] = cidr.split('/');
    list.addSubnet(address, Number(prefix), net.isIPv6(address) ? 'ipv6' : 'ipv4');
  }
  return list;
}

function allowed(remote) {
  if (!remote) return false;
  const v4 = remote.startsWith('::ffff:') ? remote.slice(7) : remote;
  return net.isIPv4(v4) ? allow.check(v4, 'ipv4') : allow.check(remote, 'ipv6');
}

process.on('SIGHUP', () => {
  try {
    config = JSON.parse(readFileSync(configFile, 'utf8'));
    allow = toBlockList(config.allow);
    console.log(`${new Date().toISOString()} reloaded: ${config.allow.length} allowed network(s)`);
  } catch (err) {
    console.log(`${new Date().toISOString()} reload failed, keeping the previous list: ${err.message}`);
  }
});

const server = net.createServer((client) => {
  if (!allowed(client.remoteAddress)) {
    console.log(`${new Date().toISOString()} refused ${client.remoteAddress}: not in the ACL`);
    client.destroy();
    return;
  }
  const upstream = net.connect(config.target.path);
  client.pipe(upstream).pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
  client.on('close', close);
  upstream.on('close', close);
});
server.listen({ host: config.listen.host, port: config.listen.port, exclusive: true }, () => {
  writeFileSync(join(dirname(configFile), 'acl-proxy.pid'), `${process.pid}\n`);
  console.log(`${new Date().toISOString()} listening on ${config.listen.host}:${config.listen.port}`);
});
server.on('error', (err) => {
  console.log(`${new Date().toISOString()} cannot listen: ${err.message}`);
  process.exit(1);
});
