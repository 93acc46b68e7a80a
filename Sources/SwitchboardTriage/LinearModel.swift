import Foundation

/// Multinomial logistic regression over sparse features, trained by stochastic gradient
/// descent with L2 regularisation. Small and deterministic: the same corpus always gives the
/// same model (a fixed-seed shuffle), and prediction is one dictionary lookup per
/// feature.
struct LinearModel<Label: Hashable & Sendable>: Sendable {
    let labels: [Label]
    /// Feature name → row in `weights`.
    private let vocabulary: [String: Int]
    /// Row-major: weights[row * labels.count + label].
    private let weights: [Double]
    private let bias: [Double]

    struct Example {
        var features: [String: Double]
        var label: Label
    }

    init(labels: [Label], examples: [Example], epochs: Int = 30, learningRate: Double = 0.5, l2: Double = 1e-5,
         classWeights: [Label: Double] = [:]) {
        self.labels = labels
        let width = labels.count
        var vocabulary: [String: Int] = [:]
        let index = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
        // Features as (row, value) pairs once, so training touches arrays, not dictionaries.
        var rows: [[(Int, Double)]] = []
        var targets: [Int] = []
        var sampleWeights: [Double] = []
        for example in examples {
            guard let target = index[example.label] else { continue }
            rows.append(example.features.sorted { $0.key < $1.key }.map { feature, value in
                if let row = vocabulary[feature] { return (row, value) }
                let row = vocabulary.count
                vocabulary[feature] = row
                return (row, value)
            })
            targets.append(target)
            sampleWeights.append(classWeights[example.label] ?? 1)
        }
        var weights = [Double](repeating: 0, count: vocabulary.count * width)
        var bias = [Double](repeating: 0, count: width)
        var order = Array(rows.indices)
        var generator = SeededGenerator(seed: 0x5EED)
        var scores = [Double](repeating: 0, count: width)
        for epoch in 0..<epochs {
            order.shuffle(using: &generator)
            let rate = learningRate / (1 + Double(epoch) * 0.1)
            for position in order {
                let features = rows[position]
                for k in 0..<width { scores[k] = bias[k] }
                for (row, value) in features {
                    let base = row * width
                    for k in 0..<width { scores[k] += weights[base + k] * value }
                }
                var gradient = Self.softmax(scores)
                gradient[targets[position]] -= 1
                let weight = sampleWeights[position]
                for k in 0..<width {
                    gradient[k] *= weight
                    bias[k] -= rate * gradient[k]
                }
                for (row, value) in features {
                    let base = row * width
                    for k in 0..<width {
                        weights[base + k] -= rate * (gradient[k] * value + l2 * weights[base + k])
                    }
                }
            }
        }
        self.vocabulary = vocabulary
        self.weights = weights
        self.bias = bias
    }

    /// A message's features that this model knows, with their rows, in the order of the
    /// message's feature dictionary: looked up once (`TriageClassifier.known`) for both
    /// `probabilities` and `evidence`. Hashing each feature's name for every use was the
    /// largest part of classifying.
    struct KnownFeatures {
        var entries: [(feature: String, row: Int, value: Double)] = []
    }

    /// Every feature this model knows, with its row (for an index shared between models).
    var rows: [String: Int] { vocabulary }

    private func scores(_ known: KnownFeatures) -> [Double] {
        let width = labels.count
        var scores = bias
        for (_, row, value) in known.entries {
            let base = row * width
            for k in 0..<width { scores[k] += weights[base + k] * value }
        }
        return scores
    }

    /// Probability of each label.
    func probabilities(_ known: KnownFeatures) -> [Label: Double] {
        Dictionary(uniqueKeysWithValues: zip(labels, Self.softmax(scores(known))))
    }

    /// The features that pushed most towards `label` in this message, strongest first.
    func evidence(_ known: KnownFeatures, for label: Label, limit: Int = 6) -> [String] {
        guard let k = labels.firstIndex(of: label) else { return [] }
        let width = labels.count
        return known.entries.compactMap { feature, row, value -> (String, Double)? in
            let slice = weights[(row * width)..<(row * width + width)]
            let mean = slice.reduce(0, +) / Double(width)
            let push = (weights[row * width + k] - mean) * value
            return push > 0 ? (feature, push) : nil
        }
        // Ties broken by name: the same message always shows the same evidence.
        .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        .prefix(limit)
        .map { $0.0 }
    }

    static func softmax(_ scores: [Double]) -> [Double] {
        let top = scores.max() ?? 0
        let exps = scores.map { exp($0 - top) }
        let sum = exps.reduce(0, +)
        return exps.map { $0 / sum }
    }
}

/// SplitMix64: a tiny deterministic generator for reproducible training.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
