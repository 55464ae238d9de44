//! Pieces shared by the three fakes: the HTTP server lifecycle, request logging, image
//! generation, image header sniffing and waiting with a deadline. Nothing here knows about a
//! particular API.

pub mod b64;
pub mod image;
pub mod image_info;
pub mod logging;
pub mod server;
pub mod wait;
