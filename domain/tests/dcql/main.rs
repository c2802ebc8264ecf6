//! DCQL from outside: the `dc+sd-jwt` examples of OpenID4VP 1.0 (§6.5,
//! §7.4, Appendix D), what the subset refuses, the verifier's evaluation of
//! a response and the wallet's choice of what to disclose.

mod choose;
mod evaluate;
mod parse;
mod paths;
mod support;
