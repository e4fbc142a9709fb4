// sign-js.mjs OUTDIR — make fresh Sigstore bundles with sigstore-js against
// @sigstore/mock's Fulcio, CT log, Rekor (v1) and TSA, plus the trusted root
// that verifies them offline, negative variants, and manifest.json. Then
// checks every case with sigstore-js's own verifier and exits 1 on a mismatch.
//
// Run with Node >= 22 and NODE_PATH from scripts/independent/setup.sh
// (make-fixtures.sh does both). The mocks are nock interceptors inside this
// process: no socket is opened, and nock.disableNetConnect() makes any stray
// request fail instead of leaving the machine.
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url); // CJS require honours NODE_PATH
const nock = require('nock');
const mock = require('@sigstore/mock');
const sigstore = require('sigstore');
const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

const OUT = process.argv[2];
if (!OUT) { console.error('usage: sign-js.mjs OUTDIR'); process.exit(2); }
fs.mkdirSync(OUT, { recursive: true });

// .invalid hosts (RFC 2606): even if interception failed, nothing resolves.
const URLS = {
  fulcio: 'https://fulcio.sigstore-mock.invalid',
  ctlog: 'https://ctfe.sigstore-mock.invalid',
  rekor: 'https://rekor.sigstore-mock.invalid',
  tsa: 'https://tsa.sigstore-mock.invalid',
};
const IDENTITY = 'https://github.com/custody-fixtures/independent-signer/.github/workflows/sign.yml@refs/heads/main';
const ISSUER = 'https://token.actions.githubusercontent.com';

nock.disableNetConnect();
// Like @sigstore/mock's own mock(), but persistent (its interceptors answer
// once) and with one CA/log/TSA instance shared by all bundles we sign.
function serve(base, handler) {
  nock(base).persist().post(handler.path).reply(async (_uri, body) => {
    const req = typeof body === 'string' ? body : JSON.stringify(body);
    const { statusCode, response, contentType } = await handler.fn(req);
    return [statusCode, response, { 'Content-Type': contentType || 'text/plain' }];
  });
}
const b64 = (b) => Buffer.from(b).toString('base64');
const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
const ec = () => crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ctlog = await mock.initializeCTLog(ec());
const ca = await mock.initializeCA(ec(), ctlog);
const tlog = await mock.initializeTLog(URLS.rekor, ec());
const tsa = await mock.initializeTSA(ec());
serve(URLS.fulcio, mock.fulcioHandler(ca));
// The mock Rekor logs the proposed entry verbatim. Real Rekor v1 stores a
// canonical form, which is what verifiers compare the bundle against:
// - keys/certificates re-encoded as standard PEM (64-column lines; the mock
//   Fulcio hands out one-line PEM, which sigstore-js passes on as is);
// - a dsse v0.0.1 proposal (proposedContent) becomes {envelopeHash,
//   payloadHash, signatures[{signature, verifier}]}.
const rekorV1 = mock.rekorHandler(tlog);
serve(URLS.rekor, { path: rekorV1.path, fn: (req) => rekorV1.fn(JSON.stringify(rekorCanonical(JSON.parse(req)))) });
function pemCanon(b64pem) {
  const pem = Buffer.from(b64pem, 'base64').toString();
  const [, label, body] = pem.match(/-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END/);
  const lines = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('base64').match(/.{1,64}/g);
  return Buffer.from(`-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`).toString('base64');
}
function rekorCanonical(e) {
  if (e.kind === 'hashedrekord') {
    e.spec.signature.publicKey.content = pemCanon(e.spec.signature.publicKey.content);
    return e;
  }
  if (e.kind !== 'dsse' || !e.spec?.proposedContent) return e;
  const { envelope, verifiers } = e.spec.proposedContent;
  const env = JSON.parse(envelope);
  return { apiVersion: e.apiVersion, kind: 'dsse', spec: {
    envelopeHash: { algorithm: 'sha256', value: sha256(envelope).toString('hex') },
    payloadHash: { algorithm: 'sha256', value: sha256(Buffer.from(env.payload, 'base64')).toString('hex') },
    signatures: env.signatures.map((s) => ({ signature: s.sig, verifier: pemCanon(verifiers[0]) })),
  } };
}
serve(URLS.tsa, mock.tsaHandler(tsa));

// The mock's inclusion proof is for a one-leaf tree (index 0, no hashes), and
// protobuf JSON then omits logIndex and hashes altogether, which
// sigstore-python refuses to parse. Instead prove the entry at its logIndex in
// a bigger tree (RFC 6962 audit path; the sibling subtree hashes are random:
// the leaves behind them need not exist for the proof to be valid), and sign a
// checkpoint for that tree the way the mock does (Rekor v1 note format).
tlog.calculateInclusionProof = function ({ body, timestamp, logID, logIndex }) {
  const treeSize = logIndex + 1 + crypto.randomInt(1, 1000);
  const node = (l, r) => crypto.createHash('sha256').update(Buffer.from([1])).update(l).update(r).digest();
  let root = crypto.createHash('sha256').update(Buffer.from([0])).update(body).digest();
  let fn = logIndex, sn = treeSize - 1;
  const hashes = [];
  while (sn !== 0) { // RFC 9162 2.1.3.2, run forwards with fresh siblings
    const p = crypto.randomBytes(32); hashes.push(p.toString('hex'));
    if ((fn & 1) === 1 || fn === sn) {
      root = node(p, root);
      if ((fn & 1) === 0) while ((fn & 1) === 0 && fn !== 0) { fn >>= 1; sn >>= 1; }
    } else root = node(root, p);
    fn >>= 1; sn >>= 1;
  }
  const note = [`${this.host} - ${crypto.randomInt(2 ** 48 - 1)}`, `${treeSize}`, root.toString('base64'), ''].join('\n');
  const sig = crypto.sign('sha256', Buffer.from(note), this.privateKey);
  const checkpoint = [note, `\u2014 ${this.host} ${Buffer.concat([logID.subarray(0, 4), sig]).toString('base64')}`, ''].join('\n');
  return { logIndex, treeSize, checkpoint, hashes, rootHash: root.toString('hex') };
};

// --- trusted root (protobuf-specs JSON: bytes base64, enums by name) -------
// A day back, so clock skew between generation and verification never matters.
const validFor = { start: new Date(Date.now() - 86400e3).toISOString().replace(/\.\d+Z$/, 'Z') };
const pubKey = (der) => ({ rawBytes: b64(der), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor });
const trustedRoot = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [{ baseUrl: URLS.rekor, hashAlgorithm: 'SHA2_256', publicKey: pubKey(tlog.publicKey),
            logId: { keyId: b64(sha256(tlog.publicKey)) } }],
  certificateAuthorities: [{ subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
    uri: URLS.fulcio, certChain: { certificates: [{ rawBytes: b64(ca.rootCertificate) }] }, validFor }],
  ctlogs: [{ baseUrl: URLS.ctlog, hashAlgorithm: 'SHA2_256', publicKey: pubKey(ctlog.publicKey),
             logId: { keyId: b64(ctlog.logID) } }],
  timestampAuthorities: [{ subject: { organization: 'sigstore.mock', commonName: 'tsa' },
    uri: URLS.tsa, certChain: { certificates: [{ rawBytes: b64(tsa.intCertificate) }, { rawBytes: b64(tsa.rootCertificate) }] },
    validFor }],
};
const writeJSON = (f, o) => fs.writeFileSync(path.join(OUT, f), JSON.stringify(o, null, 2) + '\n');
writeJSON('trusted_root.json', trustedRoot);

// --- sign -----------------------------------------------------------------
// Unsigned JWT: the mock Fulcio only decodes it (sub -> SAN URI, iss and the
// GitHub claims -> Fulcio extensions), like a real token from GitHub Actions.
const b64u = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const token = [b64u({ alg: 'RS256', typ: 'JWT' }), b64u({
  iss: ISSUER, sub: IDENTITY, aud: 'sigstore', iat: Math.floor(Date.now() / 1000),
  exp: Math.floor(Date.now() / 1000) + 600, repository: 'custody-fixtures/independent-signer',
  repository_owner: 'custody-fixtures', ref: 'refs/heads/main', sha: 'a'.repeat(40),
  workflow: 'sign', event_name: 'push', runner_environment: 'github-hosted',
  job_workflow_ref: 'custody-fixtures/independent-signer/.github/workflows/sign.yml@refs/heads/main',
}), 'c2lnbmF0dXJl'].join('.');
const base = { fulcioURL: URLS.fulcio, rekorURL: URLS.rekor, identityToken: token, retry: { retries: 0 } };
const withTSA = { ...base, tsaServerURL: URLS.tsa };

const artifact = Buffer.from('custody independent fixture: signed by sigstore-js against @sigstore/mock\n');
const other = Buffer.from('custody independent fixture: NOT the signed artifact\n');
fs.writeFileSync(path.join(OUT, 'artifact.txt'), artifact);
fs.writeFileSync(path.join(OUT, 'artifact-modified.txt'), other);
const statement = Buffer.from(JSON.stringify({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'artifact.txt', digest: { sha256: sha256(artifact).toString('hex') } }],
  predicateType: 'https://custody.invalid/independent-fixture/v1',
  predicate: { generator: 'sigstore-js + @sigstore/mock' },
}));
const INTOTO = 'application/vnd.in-toto+json';

// The TSA writes genTime with milliseconds as DER demands: trailing zeros cut
// ("...36.05Z", "...36.1Z", "...36Z"). @sigstore/core 4.x parses only exactly
// three fraction digits and rejects the rest ("invalid time"), so about one
// timestamp in ten would fail sigstore-js. Keep the usual bundles clear of
// that (nudge to a last digit != 0, <= 1 ms) and make one on purpose below.
const tsaNow = () => { const d = new Date(); if (d.getUTCMilliseconds() % 10 === 0) d.setTime(d.getTime() + 1); return d; };
tsa.getCurrentTime = tsaNow;
const made = {
  'message.sigstore.json': await sigstore.sign(artifact, base),
  'dsse.sigstore.json': await sigstore.attest(statement, INTOTO, base),
  'message-tsa.sigstore.json': await sigstore.sign(artifact, withTSA),
  'dsse-tsa.sigstore.json': await sigstore.attest(statement, INTOTO, withTSA),
};
// genTime "....5Z": second of signing + 500 ms (>= the leaf's notBefore, which
// is the signing time truncated to the second).
tsa.getCurrentTime = () => { const d = new Date(); d.setUTCMilliseconds(500); return d; };
made['message-tsa-short-fraction.sigstore.json'] = await sigstore.sign(artifact, withTSA);
tsa.getCurrentTime = tsaNow;

// --- negative variants, each derived from one fresh bundle ----------------
const clone = (o) => JSON.parse(JSON.stringify(o));
const flipB64 = (s, at = -1) => { // flip one bit of one decoded byte (default: last)
  const b = Buffer.from(s, 'base64'); const i = at < 0 ? b.length + at : at; b[i] ^= 0x01; return b.toString('base64');
};
const neg = {};
{ const b = clone(made['message.sigstore.json']);
  b.messageSignature.signature = flipB64(b.messageSignature.signature, 8); neg['message-signature-flipped'] = b; }
{ const b = clone(made['message.sigstore.json']);
  // message bundles come out as v0.2 (x509CertificateChain), dsse as v0.3 (certificate)
  const leaf = (vm) => (vm.certificate || vm.x509CertificateChain.certificates[0]);
  leaf(b.verificationMaterial).rawBytes = leaf(made['dsse.sigstore.json'].verificationMaterial).rawBytes;
  neg['message-certificate-swapped'] = b; }
{ const b = clone(made['message.sigstore.json']);
  const e = b.verificationMaterial.tlogEntries[0];
  e.integratedTime = String(Number(e.integratedTime) + 1); neg['message-set-tampered'] = b; }
{ const b = clone(made['dsse.sigstore.json']);
  const p = JSON.parse(Buffer.from(b.dsseEnvelope.payload, 'base64'));
  p.predicate.generator = 'tampered'; b.dsseEnvelope.payload = Buffer.from(JSON.stringify(p)).toString('base64');
  neg['dsse-payload-tampered'] = b; }
// Without its SET the entry has no integrated time, so the RFC 3161 timestamp
// is the only source of time (inclusion proof + checkpoint still prove the
// entry). A v0.2+ bundle may omit the SET.
const noSET = clone(made['message-tsa.sigstore.json']);
delete noSET.verificationMaterial.tlogEntries[0].inclusionPromise;
neg['message-tsa-no-set'] = noSET;
// A broken timestamp only where it is the sole time source: with a SET beside
// it, sigstore-python 4.5.1 skips the bad timestamp and verifies (it counts
// the valid time sources), while sigstore-js rejects; verifiers differ there.
{ const b = clone(noSET);
  const t = b.verificationMaterial.timestampVerificationData.rfc3161Timestamps[0];
  t.signedTimestamp = flipB64(t.signedTimestamp); neg['message-tsa-no-set-timestamp-tampered'] = b; }
for (const [n, b] of Object.entries(neg)) made[`${n}.sigstore.json`] = b;
for (const [f, b] of Object.entries(made)) writeJSON(f, b);

const c = (name, bundle, kind, expected, why, over = {}) =>
  ({ name, bundle, artifact: 'artifact.txt', kind, identity: IDENTITY, issuer: ISSUER, expected, why, ...over });
const cases = [
  c('message', 'message.sigstore.json', 'message', 'verified', 'hashedrekord v0.0.1, SET + inclusion proof'),
  c('dsse', 'dsse.sigstore.json', 'dsse', 'verified', 'in-toto Statement v1 in DSSE, Rekor dsse v0.0.1 entry'),
  c('message-tsa', 'message-tsa.sigstore.json', 'message', 'verified', 'as message, plus an RFC 3161 timestamp'),
  c('dsse-tsa', 'dsse-tsa.sigstore.json', 'dsse', 'verified', 'as dsse, plus an RFC 3161 timestamp'),
  c('message-artifact-modified', 'message.sigstore.json', 'message', 'rejected', 'other artifact than the one signed', { artifact: 'artifact-modified.txt' }),
  c('dsse-artifact-modified', 'dsse.sigstore.json', 'dsse', 'rejected', 'artifact digest not among the statement subjects', { artifact: 'artifact-modified.txt' }),
  c('message-wrong-identity', 'message.sigstore.json', 'message', 'rejected', 'policy expects another SAN', { identity: IDENTITY.replace('main', 'evil') }),
  c('message-wrong-issuer', 'message.sigstore.json', 'message', 'rejected', 'policy expects another OIDC issuer', { issuer: 'https://accounts.google.com' }),
  c('message-signature-flipped', 'message-signature-flipped.sigstore.json', 'message', 'rejected', 'one bit of the signature flipped'),
  c('message-certificate-swapped', 'message-certificate-swapped.sigstore.json', 'message', 'rejected', 'leaf certificate of the dsse bundle (other key)'),
  c('message-set-tampered', 'message-set-tampered.sigstore.json', 'message', 'rejected', 'integratedTime +1: SET no longer verifies'),
  c('dsse-payload-tampered', 'dsse-payload-tampered.sigstore.json', 'dsse', 'rejected', 'statement changed after signing'),
  c('message-tsa-short-fraction', 'message-tsa-short-fraction.sigstore.json', 'message', 'verified', 'TSA genTime with a 1-digit fraction (DER GeneralizedTime "...SS.5Z")',
    { known_peer_failures: { 'sigstore-js': '@sigstore/core 4.x parses GeneralizedTime only with 3 fraction digits: "invalid time"' } }),
  c('message-tsa-no-set', 'message-tsa-no-set.sigstore.json', 'message', 'verified', 'message-tsa with the SET removed: the RFC 3161 timestamp is the only time source'),
  c('message-tsa-no-set-timestamp-tampered', 'message-tsa-no-set-timestamp-tampered.sigstore.json', 'message', 'rejected', 'message-tsa-no-set with the last byte of the RFC 3161 token (its signature) flipped'),
];

// --- check every case with sigstore-js's verifier --------------------------
const verifier = new Verifier(toTrustMaterial(TrustedRoot.fromJSON(trustedRoot)), { ctlogThreshold: 1, tlogThreshold: 1 });
let bad = 0;
for (const k of cases) {
  const bundle = made[k.bundle];
  const data = fs.readFileSync(path.join(OUT, k.artifact));
  let got = 'verified', why = '';
  try {
    verifier.verify(toSignedEntity(bundleFromJSON(bundle), k.kind === 'message' ? data : undefined),
      { subjectAlternativeName: k.identity, extensions: { issuer: k.issuer } });
    if (k.kind === 'dsse') { // sigstore-js leaves subject binding to the caller
      const st = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64'));
      if (!st.subject.some((s) => s.digest?.sha256 === sha256(data).toString('hex')))
        throw new Error('artifact digest not among in-toto subjects');
    }
  } catch (e) { got = 'rejected'; why = `${e.code || ''} ${e.message}`.trim(); }
  const known = got !== k.expected && k.known_peer_failures?.['sigstore-js'];
  if (got !== k.expected && !known) bad++;
  console.log(`sign-js: ${got === k.expected ? 'ok  ' : known ? 'KNOWN' : 'BAD '} ${k.name}: ${got}${why ? ` (${why})` : ''}`);
}

const version = (p) => require(`${p}/package.json`).version;
writeJSON('manifest.json', {
  generator: {
    tool: 'scripts/independent/sign-js.mjs', node: process.version, sigstore: version('sigstore'),
    '@sigstore/sign': version('@sigstore/sign'), '@sigstore/mock': version('@sigstore/mock'),
    date: new Date().toISOString(),
  },
  trusted_root: 'trusted_root.json',
  cases,
});
nock.cleanAll();
process.exitCode = bad ? 1 : 0;
