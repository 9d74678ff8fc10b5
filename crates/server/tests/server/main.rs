//! The server on loopback, driven over real HTTP (reqwest) with a real SQLite file in a
//! temporary directory, real envelopes signed with real keys, and reports made by the
//! device's own report encoder and signer.

mod api;
mod backend;
mod campaign;
mod coap;
mod common;
mod curl;
mod device;
mod trust;
