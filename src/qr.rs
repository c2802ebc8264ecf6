//! A QR code in the terminal, for the `openid4vp://` link of a demo.

use anyhow::Context;
use qrcode::QrCode;
use qrcode::render::unicode;

/// The QR code of `text` in Unicode half blocks, dark on light.
pub fn render(text: &str) -> anyhow::Result<String> {
    let code = QrCode::new(text.as_bytes()).context("the link is too long for a QR code")?;
    Ok(code
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .build())
}
