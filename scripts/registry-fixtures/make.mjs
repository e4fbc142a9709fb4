// make.mjs — regenerate fixtures/registry/: one OCI image layout holding the
// demo/* images and their supply-chain evidence, the push plan that maps the
// layout's refs to repository:tag, scenario.json, trusted_root.json, the
// original sigstore-js bundles and keys/cosign.pub.
//
// Run through make.sh (it installs the tools and sets NODE_PATH, OCI_NODE_PATH).
// Images are byte-for-byte deterministic (fixed contents, fixed tar mtimes,
// uncompressed layers). Signatures are fresh on every run.
//
// Who makes what (custody makes nothing here):
// - keyless signatures, Rekor entries/SETs/inclusion proofs, certificates,
//   RFC 3161 timestamp: sigstore-js 5 against @sigstore/mock (mock-sigstore.mjs);
// - the static-key signature: node:crypto ECDSA P-256/SHA-256, logged in the
//   mock Rekor through @sigstore/sign's MessageSignatureBundleBuilder + RekorWitness;
// - the OCI 1.1 referrers (Sigstore bundle and CycloneDX SBOM) and their
//   referrers tag-schema index: @sigstore/oci attachArtifactToImage against a
//   throw-away docker-registry on loopback, then copied back byte for byte;
// - cosign .sig/.att/.sbom manifests: built here in cosign's format from the
//   pieces above (cosign itself is not installable here: no Go binaries from
//   package registries).
import { createRequire } from 'node:module';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMocks, githubToken, URLS } from './mock-sigstore.mjs';

const require = createRequire(import.meta.url);
const sigstore = require('sigstore');
const { MessageSignatureBundleBuilder, RekorWitness } = require('@sigstore/sign');
const { bundleFromJSON, bundleToJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');
if (!process.env.OCI_NODE_PATH) throw new Error('OCI_NODE_PATH unset: run make.sh');
const ociRequire = createRequire(path.join(process.env.OCI_NODE_PATH, 'x.js'));
const sigstoreOCI = ociRequire('@sigstore/oci');

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUT = path.resolve(process.argv[2] || path.join(HERE, '../../fixtures/registry'));
const LAYOUT = path.join(OUT, 'layout');

// --- constants ------------------------------------------------------------
const HOST = 'registry.custody.test'; // registry host written into payloads
const GH_REPO = 'custody-fixtures/demo';
const SOURCE_URI = `https://github.com/${GH_REPO}`;
const REF = 'refs/heads/main';
const COMMIT = '5e1f0c3a9b7d2468ace013579bdf2468ace01357';
const WORKFLOW = '.github/workflows/release.yml';
const OTHER_WORKFLOW = '.github/workflows/other.yml';
const ISSUER = 'https://token.actions.githubusercontent.com';
const SAN = `https://github.com/${GH_REPO}/${WORKFLOW}@${REF}`;
const OTHER_SAN = `https://github.com/${GH_REPO}/${OTHER_WORKFLOW}@${REF}`;
const SLSA = 'https://slsa.dev/provenance/v1';
const INTOTO = 'application/vnd.in-toto+json';
const FIXED_TIME = '2024-01-01T00:00:00Z';
const FIXED_EPOCH = Date.parse(FIXED_TIME) / 1000;

const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  empty: 'application/vnd.oci.empty.v1+json',
  simplesigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  dsse: 'application/vnd.dsse.envelope.v1+json',
  // cosign's own constant (pkg/types SPDXJSONMediaType) for `cosign attach
  // sbom --type spdx` with JSON input — not the IANA application/spdx+json.
  cosignSpdxJson: 'spdx+json',
  bundle: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  cyclonedx: 'application/vnd.cyclonedx+json',
};
const ANN = {
  sig: 'dev.cosignproject.cosign/signature',
  cert: 'dev.sigstore.cosign/certificate',
  chain: 'dev.sigstore.cosign/chain',
  bundle: 'dev.sigstore.cosign/bundle',
  ref: 'org.opencontainers.image.ref.name',
};

const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
const hex = (b) => sha256(b).toString('hex');
const log = (...a) => console.error('make:', ...a);
const sorted = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
const pem = (label, der) => `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').match(/.{1,64}/g).join('\n')}\n-----END ${label}-----\n`;

// --- layout ---------------------------------------------------------------
fs.rmSync(LAYOUT, { recursive: true, force: true });
for (const d of ['bundles', 'keys']) fs.rmSync(path.join(OUT, d), { recursive: true, force: true });
fs.mkdirSync(path.join(LAYOUT, 'blobs/sha256'), { recursive: true });
fs.mkdirSync(path.join(OUT, 'bundles'), { recursive: true });
fs.mkdirSync(path.join(OUT, 'keys'), { recursive: true });
function putBlob(buf, mediaType) {
  buf = Buffer.from(buf);
  const h = hex(buf);
  fs.writeFileSync(path.join(LAYOUT, 'blobs/sha256', h), buf);
  return { mediaType, digest: `sha256:${h}`, size: buf.length };
}
const putJSON = (obj, mediaType) => putBlob(JSON.stringify(obj), mediaType);
const refs = []; // index.json entries, in push order
const plan = [];
// Every push-plan entry is pushed with
//   skopeo copy --preserve-digests [--all] --dest-tls-verify=false oci:LAYOUT:REF docker://HOST/REPO:TAG (or @DIGEST)
// except method "http-put-manifest": skopeo 1.9.3 (containers/image 5.23)
// re-serialises an index before pushing it and drops the descriptors'
// artifactType, so with --preserve-digests it refuses ("Manifest list must be
// converted ... cannot modify it") the referrers tag-schema index; that one is
// PUT as is (its children are pushed first, by digest, with skopeo).
function addRef(repository, tag, desc, { all = false, byDigest = false, put = false } = {}) {
  // skopeo's oci: transport allows [A-Za-z0-9._-] in ref names only
  const refName = `${repository.replace(/\//g, '-')}--${byDigest ? `referrer-${desc.digest.replace(':', '-')}` : tag}`;
  refs.push({ mediaType: desc.mediaType, digest: desc.digest, size: desc.size, annotations: { [ANN.ref]: refName } });
  const dest = `docker://127.0.0.1:PORT/${repository}${byDigest ? `@${desc.digest}` : `:${tag}`}`;
  const blob = `layout/blobs/sha256/${desc.digest.slice(7)}`;
  plan.push({ ref_name: refName, repository, tag: byDigest ? null : tag, digest: desc.digest, media_type: desc.mediaType, all,
    method: put ? 'http-put-manifest' : 'skopeo-copy',
    command: put
      ? `curl -fsS -X PUT -H 'Content-Type: ${desc.mediaType}' --data-binary @fixtures/registry/${blob} http://127.0.0.1:PORT/v2/${repository}/manifests/${tag}`
      : `skopeo copy --preserve-digests${all ? ' --all' : ''} --dest-tls-verify=false oci:fixtures/registry/layout:${refName} ${dest}`,
    ...(put ? { blob } : {}) });
  return refName;
}
function writeIndex() {
  fs.writeFileSync(path.join(LAYOUT, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(LAYOUT, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: refs }));
}

// --- deterministic images -------------------------------------------------
function tar(entries) { // ustar, uid/gid 0, fixed mtime
  const blocks = [];
  const field = (buf, off, len, s) => buf.write(s, off, len, 'ascii');
  const oct = (n, len) => n.toString(8).padStart(len - 1, '0') + '\0';
  for (const e of entries) {
    const data = e.dir ? Buffer.alloc(0) : Buffer.from(e.data);
    const h = Buffer.alloc(512);
    field(h, 0, 100, e.name);
    field(h, 100, 8, oct(e.dir ? 0o755 : 0o644, 8));
    field(h, 108, 8, oct(0, 8));
    field(h, 116, 8, oct(0, 8));
    field(h, 124, 12, oct(data.length, 12));
    field(h, 136, 12, oct(FIXED_EPOCH, 12));
    field(h, 148, 8, '        ');
    field(h, 156, 1, e.dir ? '5' : '0');
    field(h, 257, 6, 'ustar\0');
    field(h, 263, 2, '00');
    field(h, 265, 32, 'root');
    field(h, 297, 32, 'root');
    let sum = 0; for (const b of h) sum += b;
    field(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
function makeImage(repository, tag, arch, variant) {
  const who = `${HOST}/${repository}:${tag} (linux/${arch}${variant ? `/${variant}` : ''})`;
  const layer = putBlob(tar([
    { name: 'app/', dir: true },
    { name: 'app/hello.txt', data: `hello from ${who}\n` },
    { name: 'etc/', dir: true },
    { name: 'etc/custody-fixture', data: `custody registry fixture; generated data, Apache-2.0\nsource ${SOURCE_URI}@${COMMIT}\n` },
  ]), MT.layer);
  const config = putJSON({
    created: FIXED_TIME, architecture: arch, ...(variant ? { variant } : {}), os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/cat', '/app/hello.txt'],
      Labels: { 'org.opencontainers.image.source': SOURCE_URI, 'org.opencontainers.image.revision': COMMIT } },
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
    history: [{ created: FIXED_TIME, created_by: 'custody scripts/registry-fixtures/make.mjs' }],
  }, MT.config);
  return putJSON({ schemaVersion: 2, mediaType: MT.manifest, config, layers: [layer],
    annotations: { 'org.opencontainers.image.source': SOURCE_URI, 'org.opencontainers.image.revision': COMMIT } }, MT.manifest);
}
const app = makeImage('demo/app', 'v1', 'amd64');
const multiAmd = makeImage('demo/multi', 'v2', 'amd64');
const multiArm = makeImage('demo/multi', 'v2', 'arm64', 'v8');
const multi = putJSON({ schemaVersion: 2, mediaType: MT.index, manifests: [
  { ...multiAmd, platform: { architecture: 'amd64', os: 'linux' } },
  { ...multiArm, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
] }, MT.index);
const unsigned = makeImage('demo/unsigned', 'v1', 'amd64');
const keyed = makeImage('demo/keyed', 'v1', 'amd64');
const wrong = makeImage('demo/wrong', 'v1', 'amd64');
addRef('demo/app', 'v1', app);
addRef('demo/multi', 'v2', multi, { all: true });
addRef('demo/unsigned', 'v1', unsigned);
addRef('demo/keyed', 'v1', keyed);
addRef('demo/wrong', 'v1', wrong);
log('images:', { app: app.digest, multi: multi.digest, unsigned: unsigned.digest, keyed: keyed.digest, wrong: wrong.digest });

// --- signing --------------------------------------------------------------
const mocks = await startMocks();
const { trustedRoot } = mocks;
const CHAIN_PEM = pem('CERTIFICATE', mocks.ca.rootCertificate);
const tokenMain = githubToken({ issuer: ISSUER, repository: GH_REPO, workflowPath: WORKFLOW, ref: REF, sha: COMMIT });
const tokenOther = githubToken({ issuer: ISSUER, repository: GH_REPO, workflowPath: OTHER_WORKFLOW, ref: REF, sha: COMMIT });
const opts = (identityToken, tsa = false) => ({ fulcioURL: URLS.fulcio, rekorURL: URLS.rekor, identityToken,
  retry: { retries: 0 }, ...(tsa ? { tsaServerURL: URLS.tsa } : {}) });

const tagFor = (digest, suffix) => `${digest.replace(':', '-')}${suffix}`;
const simpleSigning = (repository, digest) => Buffer.from(JSON.stringify({ critical: {
  identity: { 'docker-reference': `${HOST}/${repository}` }, image: { 'docker-manifest-digest': digest },
  type: 'cosign container image signature' }, optional: null }));
const leafDER = (b) => Buffer.from((b.verificationMaterial.certificate || b.verificationMaterial.x509CertificateChain.certificates[0]).rawBytes, 'base64');
function cosignBundle(b) { // Rekor "bundle" annotation as cosign writes it (Go struct field order)
  const e = b.verificationMaterial.tlogEntries[0];
  return JSON.stringify({ SignedEntryTimestamp: e.inclusionPromise.signedEntryTimestamp, Payload: {
    body: e.canonicalizedBody, integratedTime: Number(e.integratedTime), logIndex: Number(e.logIndex),
    logID: Buffer.from(e.logId.keyId, 'base64').toString('hex') } });
}
const rekorInfo = (b) => { const e = b.verificationMaterial.tlogEntries[0];
  return { entry_kind: `${e.kindVersion.kind} ${e.kindVersion.version}`, log_index: Number(e.logIndex), integrated_time: Number(e.integratedTime) }; };
// cosign's signature/attestation image: ggcr empty.Image + mutate.Append of
// static layers, OCI media types; its config lists the layers' diff IDs.
function cosignImage(layers) {
  const descs = layers.map((l) => ({ ...putBlob(l.blob, l.mediaType), annotations: sorted(l.annotations) }));
  const config = putJSON({ architecture: '', created: '0001-01-01T00:00:00Z',
    history: descs.map(() => ({ created: '0001-01-01T00:00:00Z' })), os: '',
    rootfs: { type: 'layers', diff_ids: descs.map((d) => d.digest) }, config: {} }, MT.config);
  const o = (d) => ({ mediaType: d.mediaType, size: d.size, digest: d.digest, ...(d.annotations ? { annotations: d.annotations } : {}) });
  return { manifest: putJSON({ schemaVersion: 2, mediaType: MT.manifest, config: o(config), layers: descs.map(o) }, MT.manifest), layers: descs };
}
const bundleFiles = {}; // name -> bundle JSON
const evidence = {}; // repository -> evidence items
const addEvidence = (repo, item) => { (evidence[repo] ||= []).push(item); };
const checks = []; // sigstore-js verification jobs run at the end

async function keylessSig(repository, digest, token, san, name) {
  const payload = simpleSigning(repository, digest);
  const b = await sigstore.sign(payload, opts(token));
  const { manifest, layers } = cosignImage([{ blob: payload, mediaType: MT.simplesigning, annotations: {
    [ANN.sig]: b.messageSignature.signature, [ANN.cert]: pem('CERTIFICATE', leafDER(b)),
    [ANN.chain]: CHAIN_PEM, [ANN.bundle]: cosignBundle(b) } }]);
  const tag = tagFor(digest, '.sig');
  addRef(repository, tag, manifest);
  bundleFiles[`${name}.sigstore.json`] = b;
  checks.push({ name, bundle: b, data: payload, san });
  return { kind: 'cosign-signature', signs: digest, tag, manifest_digest: manifest.digest, layer_digest: layers[0].digest,
    layer_media_type: MT.simplesigning, payload_docker_reference: `${HOST}/${repository}`,
    signer: { identity: san, issuer: ISSUER }, rekor: rekorInfo(b), bundle: `bundles/${name}.sigstore.json` };
}

// demo/app: signature, SLSA attestation, SBOM (cosign tags)
addEvidence('demo/app', await keylessSig('demo/app', app.digest, tokenMain, SAN, 'demo-app-v1.sig'));
const slsaPredicate = {
  buildDefinition: {
    buildType: 'https://actions.github.io/buildtypes/workflow/v1',
    externalParameters: { workflow: { ref: REF, repository: SOURCE_URI, path: WORKFLOW } },
    internalParameters: { github: { event_name: 'push', repository_id: '100000001', repository_owner_id: '100000000', runner_environment: 'github-hosted' } },
    resolvedDependencies: [{ uri: `git+${SOURCE_URI}@${REF}`, digest: { gitCommit: COMMIT } }],
  },
  runDetails: {
    builder: { id: SAN },
    metadata: { invocationId: `${SOURCE_URI}/actions/runs/4242424242/attempts/1` },
  },
};
const statement = (digest) => Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: `${HOST}/demo/app`, digest: { sha256: digest.slice(7) } }], predicateType: SLSA, predicate: slsaPredicate }));
{
  const st = statement(app.digest);
  const b = await sigstore.attest(st, INTOTO, opts(tokenMain));
  // The layer is the envelope exactly as sigstore-js submitted it to Rekor, so
  // that the dsse entry's envelopeHash is the layer's digest.
  const envelope = Buffer.from(JSON.stringify(b.dsseEnvelope));
  const body = JSON.parse(Buffer.from(b.verificationMaterial.tlogEntries[0].canonicalizedBody, 'base64'));
  if (body.spec.envelopeHash.value !== hex(envelope)) throw new Error('dsse envelopeHash != sha256(layer)');
  const { manifest, layers } = cosignImage([{ blob: envelope, mediaType: MT.dsse, annotations: {
    [ANN.sig]: '', [ANN.cert]: pem('CERTIFICATE', leafDER(b)), [ANN.chain]: CHAIN_PEM,
    [ANN.bundle]: cosignBundle(b), predicateType: SLSA } }]);
  const tag = tagFor(app.digest, '.att');
  addRef('demo/app', tag, manifest);
  bundleFiles['demo-app-v1.att.sigstore.json'] = b;
  checks.push({ name: 'demo-app-v1.att', bundle: b, subject: app.digest, san: SAN });
  addEvidence('demo/app', { kind: 'cosign-attestation', attests: app.digest, tag, manifest_digest: manifest.digest,
    layer_digest: layers[0].digest, layer_media_type: MT.dsse, predicate_type: SLSA,
    signer: { identity: SAN, issuer: ISSUER }, rekor: rekorInfo(b), bundle: 'bundles/demo-app-v1.att.sigstore.json' });
}
const spdx = Buffer.from(JSON.stringify({
  spdxVersion: 'SPDX-2.3', dataLicense: 'CC0-1.0', SPDXID: 'SPDXRef-DOCUMENT',
  name: `${HOST}/demo/app@${app.digest}`,
  documentNamespace: `https://custody.invalid/spdx/demo-app/${app.digest.slice(7)}`,
  creationInfo: { created: FIXED_TIME, creators: ['Tool: custody-registry-fixtures-make.mjs', 'Organization: custody-fixtures'] },
  packages: [
    { name: `${HOST}/demo/app`, SPDXID: 'SPDXRef-Package-image', versionInfo: 'v1', downloadLocation: 'NOASSERTION',
      filesAnalyzed: false, primaryPackagePurpose: 'CONTAINER', licenseConcluded: 'Apache-2.0', licenseDeclared: 'Apache-2.0',
      copyrightText: 'NOASSERTION', checksums: [{ algorithm: 'SHA256', checksumValue: app.digest.slice(7) }],
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl',
        referenceLocator: `pkg:oci/app@${encodeURIComponent(app.digest)}?repository_url=${HOST}/demo/app&tag=v1` }] },
    { name: 'hello-fixture', SPDXID: 'SPDXRef-Package-hello', versionInfo: '1.0.0', downloadLocation: `git+${SOURCE_URI}@${COMMIT}`,
      filesAnalyzed: false, primaryPackagePurpose: 'FILE', licenseConcluded: 'Apache-2.0', licenseDeclared: 'Apache-2.0',
      copyrightText: 'NOASSERTION' },
  ],
  relationships: [
    { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: 'SPDXRef-Package-image' },
    { spdxElementId: 'SPDXRef-Package-image', relationshipType: 'CONTAINS', relatedSpdxElement: 'SPDXRef-Package-hello' },
  ],
}, null, 2) + '\n');
// cosign attach sbom: one static layer, no annotations, same config shape
{
  const l = putBlob(spdx, MT.cosignSpdxJson);
  const config = putJSON({ architecture: '', created: '0001-01-01T00:00:00Z', history: [{ created: '0001-01-01T00:00:00Z' }],
    os: '', rootfs: { type: 'layers', diff_ids: [l.digest] }, config: {} }, MT.config);
  const o = (d) => ({ mediaType: d.mediaType, size: d.size, digest: d.digest });
  const manifest = putJSON({ schemaVersion: 2, mediaType: MT.manifest, config: o(config), layers: [o(l)] }, MT.manifest);
  const tag = tagFor(app.digest, '.sbom');
  addRef('demo/app', tag, manifest);
  addEvidence('demo/app', { kind: 'cosign-sbom', describes: app.digest, tag, manifest_digest: manifest.digest,
    layer_digest: l.digest, layer_media_type: MT.cosignSpdxJson, sbom_format: 'SPDX-2.3 JSON', signed: false });
}

// demo/multi: the index and each platform manifest
addEvidence('demo/multi', await keylessSig('demo/multi', multi.digest, tokenMain, SAN, 'demo-multi-v2-index.sig'));
addEvidence('demo/multi', await keylessSig('demo/multi', multiAmd.digest, tokenMain, SAN, 'demo-multi-v2-linux-amd64.sig'));
addEvidence('demo/multi', await keylessSig('demo/multi', multiArm.digest, tokenMain, SAN, 'demo-multi-v2-linux-arm64.sig'));

// demo/wrong: keyless, other workflow
addEvidence('demo/wrong', await keylessSig('demo/wrong', wrong.digest, tokenOther, OTHER_SAN, 'demo-wrong-v1.sig'));

// demo/keyed: static ECDSA P-256 key (node:crypto), hashedrekord in the mock Rekor
const { publicKey: cosignPub, privateKey: cosignPriv } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const COSIGN_PUB = cosignPub.export({ format: 'pem', type: 'spki' }).toString();
fs.writeFileSync(path.join(OUT, 'keys/cosign.pub'), COSIGN_PUB);
{
  const payload = simpleSigning('demo/keyed', keyed.digest);
  const builder = new MessageSignatureBundleBuilder({
    signer: { sign: async (data) => ({ signature: crypto.sign('sha256', data, cosignPriv), key: { $case: 'publicKey', publicKey: COSIGN_PUB, hint: '' } }) },
    witnesses: [new RekorWitness({ rekorBaseURL: URLS.rekor, fetchOnConflict: false, retry: { retries: 0 } })],
  });
  const b = bundleToJSON(await builder.create({ data: payload }));
  const body = JSON.parse(Buffer.from(b.verificationMaterial.tlogEntries[0].canonicalizedBody, 'base64'));
  if (Buffer.from(body.spec.signature.publicKey.content, 'base64').toString() !== COSIGN_PUB) throw new Error('hashedrekord publicKey is not cosign.pub');
  const { manifest, layers } = cosignImage([{ blob: payload, mediaType: MT.simplesigning, annotations: {
    [ANN.sig]: b.messageSignature.signature, [ANN.bundle]: cosignBundle(b) } }]);
  const tag = tagFor(keyed.digest, '.sig');
  addRef('demo/keyed', tag, manifest);
  bundleFiles['demo-keyed-v1.sig.sigstore.json'] = b;
  checks.push({ name: 'demo-keyed-v1.sig', bundle: b, data: payload, key: COSIGN_PUB });
  addEvidence('demo/keyed', { kind: 'cosign-signature', signs: keyed.digest, tag, manifest_digest: manifest.digest,
    layer_digest: layers[0].digest, layer_media_type: MT.simplesigning, payload_docker_reference: `${HOST}/demo/keyed`,
    signer: { key: 'keys/cosign.pub' }, rekor: rekorInfo(b), bundle: 'bundles/demo-keyed-v1.sig.sigstore.json' });
}

// OCI 1.1 referrer: Sigstore bundle v0.3 (DSSE, SLSA provenance), with an RFC 3161 timestamp
const referrerBundle = await sigstore.attest(statement(app.digest), INTOTO, opts(tokenMain, true));
bundleFiles['demo-app-v1.referrer-slsa.sigstore.json'] = referrerBundle;
checks.push({ name: 'demo-app-v1.referrer-slsa', bundle: referrerBundle, subject: app.digest, san: SAN });
if (referrerBundle.mediaType !== MT.bundle) throw new Error(`referrer bundle is ${referrerBundle.mediaType}`);

// --- independent check with sigstore-js's verifier ------------------------
// (Before nock goes: the verifier needs no network, but keep the guard on.)
function verifyAll() {
  const keyFinder = () => ({ publicKey: crypto.createPublicKey(COSIGN_PUB), validFor: () => true });
  const verifier = new Verifier(toTrustMaterial(TrustedRoot.fromJSON(trustedRoot), keyFinder), { ctlogThreshold: 1, tlogThreshold: 1 });
  const results = [];
  const run = (c, policy) => {
    try {
      verifier.verify(toSignedEntity(bundleFromJSON(c.bundle), c.data), policy);
      if (c.subject) {
        const st = JSON.parse(Buffer.from(c.bundle.dsseEnvelope.payload, 'base64'));
        if (!st.subject.some((s) => `sha256:${s.digest?.sha256}` === c.subject)) throw new Error('subject mismatch');
      }
      return 'verified';
    } catch (e) { return `rejected (${e.code || ''} ${e.message})`; }
  };
  for (const c of checks) {
    if (c.key) {
      results.push([c.name, 'key keys/cosign.pub', 'verified', run(c, undefined)]);
      continue;
    }
    results.push([c.name, `identity ${c.san === SAN ? 'release.yml' : 'other.yml'}`, 'verified',
      run(c, { subjectAlternativeName: c.san, extensions: { issuer: ISSUER } })]);
    if (c.san !== SAN) results.push([c.name, 'identity release.yml (policy)', 'rejected',
      run(c, { subjectAlternativeName: SAN, extensions: { issuer: ISSUER } })]);
  }
  let bad = 0;
  for (const [n, p, want, got] of results) {
    const ok = got.split(' ')[0] === want; if (!ok) bad++;
    log(`sigstore-js ${ok ? 'ok ' : 'BAD'} ${n} [${p}]: ${got}`);
  }
  if (bad) throw new Error(`${bad} sigstore-js verification mismatches`);
  return results.map(([n, p, want, got]) => ({ bundle: n, policy: p, expected: want, got: got.split(' ')[0] }));
}
const jsResults = verifyAll();
mocks.stop();

// --- OCI 1.1 referrers through @sigstore/oci against a real registry ------
const freePort = () => new Promise((res, rej) => { const s = net.createServer(); s.once('error', rej);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); }); });
const port = await freePort();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'custody-registry-'));
fs.writeFileSync(path.join(tmp, 'config.yml'), [
  'version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true',
  'storage:', '  filesystem:', `    rootdirectory: ${tmp}/data`, '  delete:', '    enabled: true',
  'http:', `  addr: 127.0.0.1:${port}`, ''].join('\n'));
// docker-registry logs every 404 (expected: existence probes) at level error.
const regLog = fs.openSync(path.join(tmp, 'registry.log'), 'w');
const reg = spawn(process.env.DOCKER_REGISTRY || 'docker-registry', ['serve', path.join(tmp, 'config.yml')], { stdio: ['ignore', regLog, regLog] });
const base = `http://127.0.0.1:${port}`;
let referrers;
try {
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/v2/`)).status === 200) break; } catch { /* not up yet */ }
    if (i > 100) throw new Error('docker-registry did not come up');
    await new Promise((r) => setTimeout(r, 100));
  }
  writeIndex();
  const cp = spawnSync('skopeo', ['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false',
    `oci:${LAYOUT}:demo-app--v1`, `docker://127.0.0.1:${port}/demo/app:v1`], { stdio: 'inherit' });
  if (cp.status !== 0) throw new Error('skopeo copy of demo/app:v1 failed');
  const imageName = `127.0.0.1:${port}/demo/app`;
  const bundleDesc = await sigstoreOCI.attachArtifactToImage({ imageName, imageDigest: app.digest, credentials: undefined,
    artifact: Buffer.from(JSON.stringify(referrerBundle)), mediaType: MT.bundle,
    annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': SLSA } });
  const cdx = Buffer.from(JSON.stringify({
    bomFormat: 'CycloneDX', specVersion: '1.5', serialNumber: 'urn:uuid:6c1f3c2e-0b7a-4d6e-9f58-3a1d2c4b5e6f', version: 1,
    metadata: { timestamp: FIXED_TIME, tools: { components: [{ type: 'application', name: 'custody-registry-fixtures-make.mjs' }] },
      component: { type: 'container', 'bom-ref': 'image', name: `${HOST}/demo/app`, version: app.digest,
        purl: `pkg:oci/app@${encodeURIComponent(app.digest)}?repository_url=${HOST}/demo/app&tag=v1` } },
    components: [{ type: 'file', 'bom-ref': 'hello', name: 'app/hello.txt', version: '1.0.0',
      licenses: [{ license: { id: 'Apache-2.0' } }] }],
    dependencies: [{ ref: 'image', dependsOn: ['hello'] }],
  }, null, 2) + '\n');
  const cdxDesc = await sigstoreOCI.attachArtifactToImage({ imageName, imageDigest: app.digest, credentials: undefined,
    artifact: cdx, mediaType: MT.cyclonedx, annotations: { 'org.opencontainers.image.created': FIXED_TIME } });
  // Copy back exactly what the registry holds: the tag-schema index, each
  // referrer manifest and its blobs.
  const get = async (p, accept) => { const r = await fetch(`${base}/v2/demo/app/${p}`, { headers: accept ? { Accept: accept } : {} });
    if (r.status !== 200) throw new Error(`GET ${p}: ${r.status}`); return Buffer.from(await r.arrayBuffer()); };
  const refTag = tagFor(app.digest, '');
  const idxBytes = await get(`manifests/${refTag}`, MT.index);
  const idxDesc = putBlob(idxBytes, MT.index);
  const idx = JSON.parse(idxBytes);
  referrers = { tag: refTag, index_digest: idxDesc.digest, manifests: [] };
  for (const m of idx.manifests) {
    const mb = await get(`manifests/${m.digest}`, MT.manifest);
    if (`sha256:${hex(mb)}` !== m.digest) throw new Error('referrer manifest digest mismatch');
    putBlob(mb, MT.manifest);
    const man = JSON.parse(mb);
    for (const d of [man.config, ...man.layers]) {
      const bb = await get(`blobs/${d.digest}`);
      if (`sha256:${hex(bb)}` !== d.digest) throw new Error('blob digest mismatch');
      putBlob(bb, d.mediaType);
    }
    referrers.manifests.push({ digest: m.digest, size: mb.length, artifactType: man.artifactType, layer: man.layers[0] });
  }
  if (!referrers.manifests.some((m) => m.digest === bundleDesc.digest) || !referrers.manifests.some((m) => m.digest === cdxDesc.digest))
    throw new Error('referrers index lacks an attached artifact');
  for (const m of referrers.manifests) addRef('demo/app', null, { mediaType: MT.manifest, digest: m.digest, size: m.size }, { byDigest: true });
  addRef('demo/app', refTag, idxDesc, { put: true });
  for (const m of referrers.manifests) {
    if (m.artifactType === MT.bundle) addEvidence('demo/app', { kind: 'sigstore-bundle-referrer', attests: app.digest,
      referrer_manifest: m.digest, referrers_tag: refTag, artifact_type: MT.bundle, layer_digest: m.layer.digest,
      layer_media_type: m.layer.mediaType, predicate_type: SLSA, signer: { identity: SAN, issuer: ISSUER },
      rekor: rekorInfo(referrerBundle), rfc3161_timestamp: true, bundle: 'bundles/demo-app-v1.referrer-slsa.sigstore.json',
      attached_with: '@sigstore/oci attachArtifactToImage (referrers tag-schema fallback)' });
    else addEvidence('demo/app', { kind: 'sbom-referrer', describes: app.digest, referrer_manifest: m.digest, referrers_tag: refTag,
      artifact_type: MT.cyclonedx, layer_digest: m.layer.digest, layer_media_type: m.layer.mediaType,
      sbom_format: 'CycloneDX 1.5 JSON', signed: false, attached_with: '@sigstore/oci attachArtifactToImage (referrers tag-schema fallback)' });
  }
} catch (e) {
  log('docker-registry log:\n' + fs.readFileSync(path.join(tmp, 'registry.log'), 'utf8').slice(-4000));
  throw e;
} finally {
  reg.kill('SIGTERM');
  fs.rmSync(tmp, { recursive: true, force: true });
}

// --- outputs --------------------------------------------------------------
writeIndex();
const writeJSON = (f, o) => fs.writeFileSync(path.join(OUT, f), JSON.stringify(o, null, 2) + '\n');
writeJSON('trusted_root.json', trustedRoot);
// Digests cover exact bytes: keep git from ever rewriting line endings.
fs.writeFileSync(path.join(OUT, '.gitattributes'), '# Digests cover exact bytes: never let git rewrite line endings here.\n* -text\n');
for (const [f, b] of Object.entries(bundleFiles)) writeJSON(path.join('bundles', f), b);
writeJSON('push-plan.json', plan);
const version = (r, p) => r(`${p}/package.json`).version;
const img = (repository, tag, d, extra) => ({ repository, tag, digest: d.digest, media_type: d.mediaType, ...extra,
  evidence: evidence[repository] || [] });
writeJSON('scenario.json', {
  generator: { tool: 'scripts/registry-fixtures/make.sh', node: process.version, sigstore: version(require, 'sigstore'),
    '@sigstore/sign': version(require, '@sigstore/sign'), '@sigstore/mock': version(require, '@sigstore/mock'),
    '@sigstore/oci': version(ociRequire, '@sigstore/oci'),
    skopeo: spawnSync('skopeo', ['--version']).stdout.toString().trim(), date: new Date().toISOString() },
  layout: 'layout', push_plan: 'push-plan.json', trusted_root: 'trusted_root.json',
  payload_registry_host: HOST,
  policy: { identity: SAN, issuer: ISSUER, source_repository: SOURCE_URI, source_ref: REF, source_commit: COMMIT },
  images: [
    img('demo/app', 'v1', app, { platform: 'linux/amd64', expected: {
      outcome: 'verified', signature: 'verified', attestations: { [SLSA]: 'verified' }, sbom: 'found',
      why: 'keyless cosign signature by the policy identity; SLSA v1 provenance both as cosign .att and as an OCI 1.1 Sigstore-bundle referrer; SPDX (cosign .sbom) and CycloneDX (referrer) SBOMs, unsigned' } }),
    img('demo/multi', 'v2', multi, { platforms: [
      { platform: 'linux/amd64', digest: multiAmd.digest }, { platform: 'linux/arm64/v8', digest: multiArm.digest }],
      expected: { outcome: 'verified', signature: 'verified', platforms: { 'linux/amd64': 'verified', 'linux/arm64/v8': 'verified' },
        why: 'the index digest and each platform manifest digest carry their own keyless cosign signature' } }),
    img('demo/unsigned', 'v1', unsigned, { platform: 'linux/amd64', expected: { outcome: 'no-evidence', signature: 'missing',
      why: 'no .sig/.att/.sbom tag and no referrers' } }),
    img('demo/keyed', 'v1', keyed, { platform: 'linux/amd64', expected: { outcome: 'verified-with-key', signature: 'verified with keys/cosign.pub',
      keyless_policy: 'no keyless signature (the only signature is by a static key)',
      why: 'cosign key-pair signature; its Rekor hashedrekord entry carries the PEM public key, no certificate' } }),
    img('demo/wrong', 'v1', wrong, { platform: 'linux/amd64', expected: { outcome: 'identity-mismatch', signature: 'found, identity mismatch',
      found_identity: OTHER_SAN, found_issuer: ISSUER,
      why: 'a valid keyless signature, but by .github/workflows/other.yml, not the policy identity' } }),
  ],
  referrers: referrers,
  sigstore_js_verification: jsResults,
});
const du = spawnSync('du', ['-sh', OUT]).stdout.toString().trim();
log(`wrote ${OUT} (${du}); ${refs.length} refs in the layout`);
