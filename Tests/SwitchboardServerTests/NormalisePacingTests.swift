import Testing
@testable import SwitchboardServer

/// The normaliser's pacing rule on its own: it stands aside for intake only while deliveries
/// arrive faster than it stores them, and never once the backlog is half full.
@Suite struct NormalisePacingTests {
    /// A pacing that has seen intake at `intake` deliveries a second for one window, and
    /// batches of 2 stored in `batchMilliseconds` each.
    static func pacing(intake: Int, batchMilliseconds: Int) -> NormalisePacing {
        var pacing = NormalisePacing()
        let start = ContinuousClock.now
        pacing.observeIntake(queuedCount: 1000, at: start)
        pacing.observeIntake(queuedCount: 1000 + intake / 2, at: start + .milliseconds(500))
        for _ in 0..<5 { pacing.observeBatch(handled: 2, took: .milliseconds(batchMilliseconds)) }
        return pacing
    }

    @Test func measuresIntakeOverWholeWindowsOnly() {
        var pacing = NormalisePacing()
        let start = ContinuousClock.now
        pacing.observeIntake(queuedCount: 0, at: start)
        pacing.observeIntake(queuedCount: 100, at: start + .milliseconds(100))  // window not complete
        #expect(pacing.intakeRate == 0)
        pacing.observeIntake(queuedCount: 300, at: start + .milliseconds(300))
        #expect(abs(pacing.intakeRate - 1000) < 0.001)
        pacing.observeIntake(queuedCount: 300, at: start + .milliseconds(600))  // nothing arrived
        #expect(pacing.intakeRate == 0)
    }

    @Test func smoothsTheStoringRate() {
        var pacing = NormalisePacing()
        #expect(pacing.storingRate == nil)
        pacing.observeBatch(handled: 0, took: .milliseconds(5))  // an empty batch says nothing
        #expect(pacing.storingRate == nil)
        pacing.observeBatch(handled: 2, took: .milliseconds(2))
        #expect(abs(pacing.storingRate! - 1000) < 0.001)
        pacing.observeBatch(handled: 2, took: .milliseconds(4))  // 500/s, weighted a fifth
        #expect(abs(pacing.storingRate! - 900) < 0.001)
    }

    /// Steady intake at half of what storing manages: stored as it comes, no pause.
    @Test func keepsUpWithALoadItCanStore() {
        let pacing = Self.pacing(intake: 560, batchMilliseconds: 2)  // storing ~1,000/s
        #expect(pacing.pause(after: .milliseconds(2), intakeBusy: true, backlog: 10, maxBacklog: 20_000) == .zero)
    }

    /// Intake above storing's measured rate but not twice it: storing's measure (busy-sized
    /// batches) undersells it, so this is still a load to keep up with.
    @Test func keepsUpWhenIntakeIsWithinTwiceTheMeasuredStoringRate() {
        let pacing = Self.pacing(intake: 1900, batchMilliseconds: 2)  // storing ~1,000/s
        #expect(pacing.pause(after: .milliseconds(2), intakeBusy: true, backlog: 10, maxBacklog: 20_000) == .zero)
        let outrun = Self.pacing(intake: 2100, batchMilliseconds: 2)
        #expect(outrun.pause(after: .milliseconds(2), intakeBusy: true, backlog: 10, maxBacklog: 20_000) == .milliseconds(18))
    }

    /// A burst beyond storing's speed: storing works a tenth of the time.
    @Test func standsAsideInABurstItCannotStoreAnyway() {
        let pacing = Self.pacing(intake: 6000, batchMilliseconds: 2)
        #expect(pacing.pause(after: .milliseconds(2), intakeBusy: true, backlog: 5_000, maxBacklog: 20_000) == .milliseconds(18))
    }

    /// From half the backlog limit on, storing runs flat out even in a burst.
    @Test func neverPausesOnceTheBacklogIsHalfFull() {
        let pacing = Self.pacing(intake: 6000, batchMilliseconds: 2)
        #expect(pacing.pause(after: .milliseconds(2), intakeBusy: true, backlog: 9_999, maxBacklog: 20_000) > .zero)
        #expect(pacing.pause(after: .milliseconds(2), intakeBusy: true, backlog: 10_000, maxBacklog: 20_000) == .zero)
    }

    @Test func quietIntakeMeansLargeBatchesAndNoPause() {
        let pacing = Self.pacing(intake: 6000, batchMilliseconds: 2)
        #expect(pacing.batchSize(intakeBusy: false) == 64)
        #expect(pacing.batchSize(intakeBusy: true) == 2)
        #expect(pacing.pause(after: .milliseconds(2), intakeBusy: false, backlog: 5_000, maxBacklog: 20_000) == .zero)
    }

    /// Before any batch has been timed there is nothing to compare intake with: store.
    @Test func storesUntilItHasMeasuredItself() {
        var pacing = NormalisePacing()
        let start = ContinuousClock.now
        pacing.observeIntake(queuedCount: 0, at: start)
        pacing.observeIntake(queuedCount: 5000, at: start + .seconds(1))
        #expect(pacing.pause(after: .milliseconds(2), intakeBusy: true, backlog: 100, maxBacklog: 20_000) == .zero)
    }
}
