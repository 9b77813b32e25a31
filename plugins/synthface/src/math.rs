//! Small, platform-independent numerics: 3-vectors, 3x3 matrices, sine,
//! cosine and exponential built from `+ - * /` only, polygons and splines.
//!
//! The renderer avoids the platform's `libm` (whose last bits may differ
//! between machines) so that a face is a bit-exact function of its inputs:
//! every value below comes from IEEE-754 basic operations, `sqrt` and
//! `round`, which are correctly rounded everywhere.

/// A 3-vector.
pub type V3 = [f64; 3];
/// A 3x3 matrix, row-major.
pub type M3 = [[f64; 3]; 3];
/// A 2-D point.
pub type P2 = [f64; 2];

const PI: f64 = std::f64::consts::PI;

/// `a + b`.
pub fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// `a - b`.
pub fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// `k a`.
pub fn scale(a: V3, k: f64) -> V3 {
    [a[0] * k, a[1] * k, a[2] * k]
}

/// Dot product.
pub fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// `a / |a|` (a zero vector stays zero).
pub fn normalize(a: V3) -> V3 {
    let n = dot(a, a).sqrt();
    if n > 0.0 {
        scale(a, 1.0 / n)
    } else {
        a
    }
}

/// `m v`.
pub fn mul_mv(m: &M3, v: V3) -> V3 {
    [dot(m[0], v), dot(m[1], v), dot(m[2], v)]
}

/// `a b`.
pub fn mul_mm(a: &M3, b: &M3) -> M3 {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, value) in row.iter_mut().enumerate() {
            *value = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
        }
    }
    out
}

/// The transpose (the inverse of a rotation).
pub fn transpose(m: &M3) -> M3 {
    [
        [m[0][0], m[1][0], m[2][0]],
        [m[0][1], m[1][1], m[2][1]],
        [m[0][2], m[1][2], m[2][2]],
    ]
}

/// Sine and cosine of `x` radians, accurate to about 1e-15 for |x| < 1e4.
pub fn sin_cos(x: f64) -> (f64, f64) {
    let quadrant = (x / (PI / 2.0)).round();
    let r = x - quadrant * (PI / 2.0);
    let r2 = r * r;
    // Taylor series on [-pi/4, pi/4].
    let s = r
        * (1.0
            - r2 / 6.0
                * (1.0 - r2 / 20.0 * (1.0 - r2 / 42.0 * (1.0 - r2 / 72.0 * (1.0 - r2 / 110.0 * (1.0 - r2 / 156.0))))));
    let c = 1.0
        - r2 / 2.0
            * (1.0
                - r2 / 12.0
                    * (1.0
                        - r2 / 30.0 * (1.0 - r2 / 56.0 * (1.0 - r2 / 90.0 * (1.0 - r2 / 132.0 * (1.0 - r2 / 182.0))))));
    match (quadrant as i64).rem_euclid(4) {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// Sine of `x` radians.
pub fn sin(x: f64) -> f64 {
    sin_cos(x).0
}

/// `e^x` for `x` in about [-700, 700].
pub fn exp(x: f64) -> f64 {
    let x = x.clamp(-700.0, 700.0);
    let k = (x / std::f64::consts::LN_2).round();
    let r = x - k * std::f64::consts::LN_2;
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 1..=14 {
        term *= r / n as f64;
        sum += term;
    }
    let two_k = f64::from_bits(((k as i64 + 1023) as u64) << 52);
    sum * two_k
}

/// Degrees to radians.
pub fn radians(degrees: f64) -> f64 {
    degrees * (PI / 180.0)
}

/// Linear interpolation between `a` and `b`.
pub fn lerp2(a: P2, b: P2, t: f64) -> P2 {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
}

/// A closed polygon with its bounding box, for point-in-region tests.
#[derive(Debug, Clone)]
pub struct Polygon {
    points: Vec<P2>,
    min: P2,
    max: P2,
}

impl Polygon {
    /// The polygon through `points` (closed implicitly).
    pub fn new(points: Vec<P2>) -> Self {
        let mut min = [f64::INFINITY; 2];
        let mut max = [f64::NEG_INFINITY; 2];
        for p in &points {
            for k in 0..2 {
                min[k] = min[k].min(p[k]);
                max[k] = max[k].max(p[k]);
            }
        }
        Polygon { points, min, max }
    }

    /// Whether `p` lies inside (even-odd rule).
    pub fn contains(&self, p: P2) -> bool {
        if p[0] < self.min[0] || p[0] > self.max[0] || p[1] < self.min[1] || p[1] > self.max[1] {
            return false;
        }
        let mut inside = false;
        let n = self.points.len();
        let mut j = n.wrapping_sub(1);
        for i in 0..n {
            let (a, b) = (self.points[i], self.points[j]);
            if (a[1] > p[1]) != (b[1] > p[1]) {
                let x = a[0] + (p[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
                if p[0] < x {
                    inside = !inside;
                }
            }
            j = i;
        }
        inside
    }

    /// Distance from `p` to the polygon's outline.
    pub fn distance_to_outline(&self, p: P2) -> f64 {
        let n = self.points.len();
        let mut best = f64::INFINITY;
        for i in 0..n {
            best = best.min(segment_distance(p, self.points[i], self.points[(i + 1) % n]));
        }
        best
    }

    /// The vertices.
    pub fn points(&self) -> &[P2] {
        &self.points
    }
}

/// Distance from `p` to the segment `a`-`b`.
pub fn segment_distance(p: P2, a: P2, b: P2) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (ex, ey) = (a[0] + t * dx - p[0], a[1] + t * dy - p[1]);
    (ex * ex + ey * ey).sqrt()
}

fn catmull_rom(p0: P2, p1: P2, p2: P2, p3: P2, t: f64) -> P2 {
    let (t2, t3) = (t * t, t * t * t);
    let mut out = [0.0; 2];
    for k in 0..2 {
        out[k] = 0.5
            * (2.0 * p1[k]
                + (p2[k] - p0[k]) * t
                + (2.0 * p0[k] - 5.0 * p1[k] + 4.0 * p2[k] - p3[k]) * t2
                + (3.0 * p1[k] - p0[k] - 3.0 * p2[k] + p3[k]) * t3);
    }
    out
}

/// A smooth open curve through `points` (Catmull-Rom, `steps` samples per
/// segment), from the first point to the last, both included.
pub fn smooth_open(points: &[P2], steps: usize) -> Vec<P2> {
    let n = points.len();
    let at = |i: isize| points[i.clamp(0, n as isize - 1) as usize];
    let mut out = Vec::with_capacity((n - 1) * steps + 1);
    for i in 0..n as isize - 1 {
        for s in 0..steps {
            out.push(catmull_rom(
                at(i - 1),
                at(i),
                at(i + 1),
                at(i + 2),
                s as f64 / steps as f64,
            ));
        }
    }
    out.push(points[n - 1]);
    out
}

/// A smooth closed curve through `points` (Catmull-Rom).
pub fn smooth_closed(points: &[P2], steps: usize) -> Vec<P2> {
    let n = points.len() as isize;
    let at = |i: isize| points[i.rem_euclid(n) as usize];
    let mut out = Vec::with_capacity(points.len() * steps);
    for i in 0..n {
        for s in 0..steps {
            out.push(catmull_rom(
                at(i - 1),
                at(i),
                at(i + 1),
                at(i + 2),
                s as f64 / steps as f64,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_cosine_and_exp_match_the_platform_closely() {
        for i in -2000..2000 {
            let x = i as f64 * 0.0137;
            let (s, c) = sin_cos(x);
            assert!((s - x.sin()).abs() < 1e-13, "sin {x}");
            assert!((c - x.cos()).abs() < 1e-13, "cos {x}");
            let e = exp(x / 3.0);
            assert!((e / (x / 3.0).exp() - 1.0).abs() < 1e-13, "exp {x}");
        }
    }

    #[test]
    fn polygon_contains_its_inside_only() {
        let square = Polygon::new(vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]);
        assert!(square.contains([0.5, 0.5]));
        assert!(!square.contains([1.5, 0.5]));
        assert!(!square.contains([0.5, -0.1]));
        assert!((square.distance_to_outline([0.5, 0.4]) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn splines_pass_through_their_points() {
        let pts = [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [1.0, -1.0]];
        let open = smooth_open(&pts, 4);
        assert_eq!(open.len(), 13);
        assert_eq!(open[4], [1.0, 1.0]);
        let closed = smooth_closed(&pts, 4);
        assert_eq!(closed[8], [2.0, 0.0]);
    }
}
