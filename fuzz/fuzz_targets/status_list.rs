//! Status lists: any `lst` decodes or is refused without panicking, and
//! any statuses packed and compressed come back entry by entry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proofline_domain::status_list::{decompress, encode_lst, status_at};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let bits = [1u8, 2, 4, 8][usize::from(selector % 4)];
    if let Ok(text) = std::str::from_utf8(rest)
        && let Ok(list) = decompress(text)
    {
        for idx in [0u64, 1, 7, 8, list.len() as u64, u64::MAX / 8, u64::MAX] {
            if let Some(status) = status_at(&list, bits, idx) {
                assert!(u16::from(status) < 1u16 << bits);
            }
        }
    }
    let mask = if bits == 8 { 0xff } else { (1u8 << bits) - 1 };
    let lst = encode_lst(rest, bits);
    let list = decompress(&lst).expect("what encode_lst wrote decodes");
    for (idx, status) in rest.iter().enumerate() {
        assert_eq!(status_at(&list, bits, idx as u64), Some(status & mask));
    }
});
