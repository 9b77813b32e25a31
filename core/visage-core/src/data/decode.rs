//! JPEG and PNG decoding into `[3, H, W]` float tensors, in pure Rust (the
//! `image` crate with `zune-jpeg` and `png`), so that loader workers make no
//! libtorch calls to decode.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use image::imageops::FilterType;
use image::{ImageFormat, ImageReader, RgbImage};
use tch::Tensor;

use crate::{Error, Result};

/// Decodes a JPEG or PNG (the format is read from the bytes, not the file
/// name) into interleaved 8-bit RGB, optionally resized to `(height, width)`
/// with a bilinear (triangle) filter. Grey and alpha images become RGB
/// (alpha is dropped). A truncated or corrupt file, or anything that is not
/// a JPEG or PNG, is an error describing the problem; a decoder panic is
/// caught and reported the same way.
pub fn decode_rgb8(bytes: &[u8], resize: Option<(u32, u32)>) -> std::result::Result<RgbImage, String> {
    let format = image::guess_format(bytes).map_err(|_| "not a JPEG or PNG image".to_string())?;
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png) {
        return Err(format!("a {format:?} image; only JPEG and PNG are read"));
    }
    if format == ImageFormat::Jpeg && !has_jpeg_end(bytes) {
        return Err("truncated JPEG (no end-of-image marker)".into());
    }
    let decoded = catch_unwind(AssertUnwindSafe(|| {
        let mut reader = ImageReader::new(Cursor::new(bytes));
        reader.set_format(format);
        reader.decode()
    }))
    .map_err(|_| "the image decoder panicked on this file".to_string())?
    .map_err(|e| format!("cannot decode {format:?}: {e}"))?;
    let rgb = decoded.into_rgb8();
    if rgb.width() == 0 || rgb.height() == 0 {
        return Err("the image is empty".into());
    }
    Ok(match resize {
        Some((h, w)) if (h, w) != (rgb.height(), rgb.width()) => {
            image::imageops::resize(&rgb, w, h, FilterType::Triangle)
        }
        _ => rgb,
    })
}

/// A JPEG ends with the EOI marker `FF D9`, possibly followed by a little
/// padding; a file cut short does not (the decoder would otherwise fill the
/// missing rows silently).
fn has_jpeg_end(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Interleaved RGB bytes `[H, W, 3]` as a float tensor `[3, H, W]` in 0..1
/// (`x / 255`, as torchvision's `ToTensor`).
///
/// # Panics
/// If the tensor cannot be allocated ([`f_rgb8_to_tensor`] returns the error).
pub fn rgb8_to_tensor(image: &RgbImage) -> Tensor {
    f_rgb8_to_tensor(image).expect("a CPU tensor of 3 x h x w floats")
}

/// [`rgb8_to_tensor`], with a failed allocation as an error.
pub fn f_rgb8_to_tensor(image: &RgbImage) -> Result<Tensor> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let plane = w * h;
    crate::pixels::filled(&[3, h as i64, w as i64], |out| {
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for (((px, r), g), b) in image.as_raw().chunks_exact(3).zip(r).zip(g).zip(b) {
            *r = px[0] as f32 / 255.0;
            *g = px[1] as f32 / 255.0;
            *b = px[2] as f32 / 255.0;
        }
    })
}

/// Reads and decodes the image at `path` into `[3, H, W]` float. Any
/// problem (missing, unreadable, truncated, corrupt, not an image) is
/// [`Error::BadSample`] naming the file, with `skip` as given.
pub fn load_image(path: &Path, resize: Option<(u32, u32)>, skip: bool) -> Result<Tensor> {
    let bad = |message: String| Error::BadSample {
        path: path.to_path_buf(),
        message,
        skip,
    };
    // Only regular files are opened: a FIFO would block the loader forever,
    // and a device like /dev/zero would never end.
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(bad(format!("{}, not a regular image file", file_kind(&meta))));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let rgb = decode_rgb8(&bytes, resize).map_err(bad)?;
    f_rgb8_to_tensor(&rgb)
}

/// What a file system entry that is not a regular file is, in words.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn encoded(format: ImageFormat) -> Vec<u8> {
        let img = RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 8) as u8, ((x + y) * 3) as u8])
        });
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn png_round_trips_exactly_and_jpeg_closely() {
        let png = decode_rgb8(&encoded(ImageFormat::Png), None).unwrap();
        assert_eq!((png.width(), png.height()), (40, 30));
        assert_eq!(png.get_pixel(5, 7).0, [30, 56, 36]);
        let t = rgb8_to_tensor(&png);
        assert_eq!(t.size(), vec![3, 30, 40]);
        assert!((t.double_value(&[1, 7, 5]) - 56.0 / 255.0).abs() < 1e-7);
        let jpeg = decode_rgb8(&encoded(ImageFormat::Jpeg), Some((15, 20))).unwrap();
        assert_eq!((jpeg.width(), jpeg.height()), (20, 15));
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let jpeg = encoded(ImageFormat::Jpeg);
        let png = encoded(ImageFormat::Png);
        for (bytes, expect) in [
            (&jpeg[..jpeg.len() / 2], "truncated"),
            (&png[..png.len() / 2], "cannot decode"),
            (&png[..20], "cannot decode"),
            (b"hello, I am text".as_slice(), "not a JPEG or PNG"),
            (&[][..], "not a JPEG or PNG"),
        ] {
            let err = decode_rgb8(bytes, None).unwrap_err();
            assert!(err.contains(expect), "{err}");
        }
        // Garbage inside an otherwise well-formed JPEG.
        let mut corrupt = jpeg.clone();
        for b in &mut corrupt[20..jpeg.len() - 2] {
            *b = 0xFF;
        }
        assert!(decode_rgb8(&corrupt, None).is_err());
    }

    fn image_bytes() -> impl Strategy<Value = Vec<u8>> {
        let png = encoded(ImageFormat::Png);
        let jpeg = encoded(ImageFormat::Jpeg);
        (
            prop::bool::ANY,
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            prop::option::of(any::<prop::sample::Index>()),
        )
            .prop_map(move |(is_png, changes, cut)| {
                let mut bytes = if is_png { png.clone() } else { jpeg.clone() };
                for (at, b) in changes {
                    let i = at.index(bytes.len());
                    bytes[i] = b;
                }
                if let Some(cut) = cut {
                    bytes.truncate(cut.index(bytes.len()));
                }
                bytes
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Arbitrary bytes, with or without an image's signature, are an
        /// error or an image, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), prefix in 0..3usize) {
            let mut file = [&b""[..], b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"][prefix].to_vec();
            file.extend(bytes);
            let _ = decode_rgb8(&file, None);
        }

        /// A valid PNG or JPEG with bytes changed or its tail cut off.
        #[test]
        fn damaged_images_never_panic(bytes in image_bytes(), resize in prop::option::of((1u32..50, 1u32..50))) {
            if let Ok(rgb) = decode_rgb8(&bytes, resize) {
                prop_assert!(rgb.width() > 0 && rgb.height() > 0);
            }
        }
    }

    #[test]
    fn only_regular_files_are_opened() {
        let dir = std::env::temp_dir().join(format!("visage-decode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("blocks.png");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        // Returns at once instead of blocking on the FIFO.
        let err = load_image(&fifo, None, false).unwrap_err().to_string();
        assert!(
            err.contains("blocks.png") && err.contains("a FIFO, not a regular image file"),
            "{err}"
        );
        let err = load_image(&dir, None, true).unwrap_err().to_string();
        assert!(err.contains("a directory"), "{err}");
        let err = load_image(Path::new("/dev/zero"), None, false).unwrap_err().to_string();
        assert!(err.contains("/dev/zero") && err.contains("a device"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
