// mock-sigstore.mjs — in-process @sigstore/mock Fulcio, CT log, Rekor (v1)
// and TSA behind nock, made Rekor-faithful, plus the trusted root for them.
//
// The mock set-up is the one of scripts/independent/sign-js.mjs, copied here
// (that file is a script that runs on import, so it cannot be imported):
// - persistent interceptors, one CA/log/TSA shared by every signature;
// - Rekor canonicalisation: PEM keys/certificates re-encoded as standard
//   64-column PEM, dsse v0.0.1 proposedContent turned into the stored
//   {envelopeHash, payloadHash, signatures[{signature, verifier}]} form;
// - a real RFC 6962 inclusion proof at the entry's logIndex in a bigger tree
//   and a checkpoint signed for that tree (Rekor v1 note format);
// - TSA genTime kept off a trailing-zero millisecond (@sigstore/core 4.x
//   parses only exactly three fraction digits).
// No socket is opened for the mocks; nock.disableNetConnect() makes any other
// outgoing request fail (restore() lifts nock entirely, for the registry step).
import { createRequire } from 'node:module';
import crypto from 'node:crypto';

const require = createRequire(import.meta.url); // CJS require honours NODE_PATH
const nock = require('nock');
const mock = require('@sigstore/mock');

export const URLS = {
  fulcio: 'https://fulcio.sigstore-mock.invalid',
  ctlog: 'https://ctfe.sigstore-mock.invalid',
  rekor: 'https://rekor.sigstore-mock.invalid',
  tsa: 'https://tsa.sigstore-mock.invalid',
};

const b64 = (b) => Buffer.from(b).toString('base64');
const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
const ec = () => crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

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

function inclusionProof({ body, logID, logIndex }) {
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
}

export async function startMocks() {
  nock.disableNetConnect();
  const serve = (base, handler) => {
    nock(base).persist().post(handler.path).reply(async (_uri, body) => {
      const req = typeof body === 'string' ? body : JSON.stringify(body);
      const { statusCode, response, contentType } = await handler.fn(req);
      return [statusCode, response, { 'Content-Type': contentType || 'text/plain' }];
    });
  };
  const ctlog = await mock.initializeCTLog(ec());
  const ca = await mock.initializeCA(ec(), ctlog);
  const tlog = await mock.initializeTLog(URLS.rekor, ec());
  const tsa = await mock.initializeTSA(ec());
  tlog.calculateInclusionProof = inclusionProof;
  tsa.getCurrentTime = () => { const d = new Date(); if (d.getUTCMilliseconds() % 10 === 0) d.setTime(d.getTime() + 1); return d; };
  serve(URLS.fulcio, mock.fulcioHandler(ca));
  const rekorV1 = mock.rekorHandler(tlog);
  serve(URLS.rekor, { path: rekorV1.path, fn: (req) => rekorV1.fn(JSON.stringify(rekorCanonical(JSON.parse(req)))) });
  serve(URLS.tsa, mock.tsaHandler(tsa));

  // protobuf-specs JSON (bytes base64, enums by name). A day back, so clock
  // skew between generation and verification never matters.
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
  return {
    ca, tlog, tsa, ctlog, trustedRoot,
    stop: () => { nock.cleanAll(); nock.restore(); nock.enableNetConnect(); },
  };
}

// Unsigned JWT: the mock Fulcio only decodes it (sub -> SAN URI, iss and the
// GitHub claims -> Fulcio extensions), like a token from GitHub Actions.
export function githubToken({ issuer, repository, workflowPath, ref, sha }) {
  const b64u = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const jobWorkflowRef = `${repository}/${workflowPath}@${ref}`;
  return [b64u({ alg: 'RS256', typ: 'JWT' }), b64u({
    iss: issuer, sub: `https://github.com/${jobWorkflowRef}`, aud: 'sigstore', iat: now, exp: now + 600,
    repository, repository_owner: repository.split('/')[0], repository_id: '100000001',
    repository_owner_id: '100000000', repository_visibility: 'public',
    ref, sha, workflow: workflowPath.replace(/^.*\//, '').replace(/\.ya?ml$/, ''),
    event_name: 'push', runner_environment: 'github-hosted',
    job_workflow_ref: jobWorkflowRef, job_workflow_sha: sha,
    workflow_ref: jobWorkflowRef, workflow_sha: sha,
    run_id: '4242424242', run_attempt: '1',
  }), 'c2lnbmF0dXJl'].join('.');
}
