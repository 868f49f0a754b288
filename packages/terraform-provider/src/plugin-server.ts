// @peculiar/x509 (its dependency injection) needs the Reflect metadata API before it loads.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as x509 from '@peculiar/x509';
import protobuf from 'protobufjs';
import { GO_PLUGIN_PROTO, HEALTH_PROTO } from './protocol/go-plugin.js';

/** What Terraform sets to say it is the one starting the plugin (go-plugin's handshake config). */
const MAGIC_COOKIE_KEY = 'TF_PLUGIN_MAGIC_COOKIE';
const MAGIC_COOKIE_VALUE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';
const CORE_PROTOCOL_VERSION = 1;
export const PROTOCOL_VERSION = 6;

/** Loads services from proto text (the definitions are part of the bundle, not files beside it). */
export function loadProto(text: string): grpc.GrpcObject {
  const root = protobuf.parse(text, { keepCase: true }).root;
  const definition = protoLoader.fromJSON(root.toJSON(), {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition);
}

export class NotStartedByTerraform extends Error {}

/**
 * Serves a plugin as hashicorp/go-plugin's client expects: checks the magic cookie and the
 * protocol versions Terraform offers, listens on a private Unix socket with mutual TLS (Terraform
 * sends its client certificate in PLUGIN_CLIENT_CERT; the plugin answers with a fresh self-signed
 * one in the handshake line), registers the health, controller, broker and stdio services go-plugin
 * calls, and prints the handshake line: the only thing ever written to stdout.
 */
export async function servePlugin(
  register: (server: grpc.Server) => void,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  if (env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE)
    throw new NotStartedByTerraform(
      'This is a Terraform provider: Terraform starts it. Install it with `kumo terraform install` and use it from a Terraform configuration (docs/terraform.md).',
    );
  const offered = (env.PLUGIN_PROTOCOL_VERSIONS ?? String(PROTOCOL_VERSION)).split(',').map(Number);
  if (!offered.includes(PROTOCOL_VERSION))
    throw new Error(
      `Terraform offers plugin protocol ${offered.join(', ')}; this provider speaks ${PROTOCOL_VERSION} (Terraform 1.0 or newer).`,
    );

  const server = new grpc.Server();
  const goPlugin = loadProto(GO_PLUGIN_PROTO).plugin as grpc.GrpcObject;
  const health = ((loadProto(HEALTH_PROTO).grpc as grpc.GrpcObject).health as grpc.GrpcObject)
    .v1 as grpc.GrpcObject;
  const service = (pkg: grpc.GrpcObject, name: string) =>
    (pkg[name] as grpc.ServiceClientConstructor).service;

  const dir = mkdtempSync(join(tmpdir(), 'kumo-tf-'));
  const socket = join(dir, 'plugin.sock');
  const stop = () => {
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  };
  server.addService(service(health, 'Health'), {
    Check: (_call: unknown, done: grpc.sendUnaryData<unknown>) => done(null, { status: 'SERVING' }),
  });
  server.addService(service(goPlugin, 'GRPCController'), {
    Shutdown: (_call: unknown, done: grpc.sendUnaryData<unknown>) => {
      done(null, {});
      setImmediate(stop);
    },
  });
  // Opened by go-plugin's client on every connection; this provider asks for no extra connections.
  server.addService(service(goPlugin, 'GRPCBroker'), {
    StartStream: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
      call.on('data', () => undefined);
      call.on('end', () => call.end());
    },
  });
  // Logs go to stderr, which Terraform reads as the plugin's log; nothing is streamed here.
  server.addService(service(goPlugin, 'GRPCStdio'), {
    StreamStdio: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      call.on('cancelled', () => call.end());
    },
  });
  register(server);

  const { credentials, certificate } = await tlsFor(env.PLUGIN_CLIENT_CERT);
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, credentials, (err) => (err ? reject(err) : resolve())),
  );
  process.on('SIGTERM', stop);
  process.on('SIGINT', () => undefined); // Terraform forwards Ctrl-C; it stops the plugin itself.
  process.stdout.write(
    `${CORE_PROTOCOL_VERSION}|${PROTOCOL_VERSION}|unix|${socket}|grpc|${certificate ?? ''}\n`,
  );
}

/**
 * Mutual TLS as go-plugin's AutoMTLS has it: only Terraform's own certificate may connect, and
 * Terraform trusts only the certificate given in the handshake (base64 DER, no padding). Without
 * a client certificate (TF_DISABLE_PLUGIN_TLS) the socket is plain.
 */
async function tlsFor(clientCertPem: string | undefined) {
  if (!clientCertPem) return { credentials: grpc.ServerCredentials.createInsecure(), certificate: undefined };
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    name: 'CN=localhost, O=HashiCorp',
    notBefore: new Date(now - 30_000),
    notAfter: new Date(now + 30 * 24 * 3600_000),
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature |
          x509.KeyUsageFlags.keyEncipherment |
          x509.KeyUsageFlags.keyCertSign,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.clientAuth,
        x509.ExtendedKeyUsage.serverAuth,
      ]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }]),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END PRIVATE KEY-----\n`;
  const credentials = grpc.ServerCredentials.createSsl(
    Buffer.from(clientCertPem),
    [{ private_key: Buffer.from(keyPem), cert_chain: Buffer.from(cert.toString('pem')) }],
    true,
  );
  return { credentials, certificate: Buffer.from(cert.rawData).toString('base64').replace(/=+$/, '') };
}
