//! Discovering an issuer's keys: did:web URLs (the method spec's
//! examples), DID documents with JWK and Multikey methods, SD-JWT VC issuer
//! metadata, JWK Sets, and Subresource Integrity (the SRI spec's vectors).

mod did_documents;
mod integrity;
mod metadata;
mod support;
mod urls;
