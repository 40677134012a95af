import Foundation
import Logging
import Skillable

/// The launchable Skillable lab profiles (enabled, development status Complete), cached for a short
/// time and refreshed in the background: an instructor never waits for Skillable once the list is known.
actor LabCatalog {
    private let skillable: SkillableClient
    private let ttl: Duration
    private let logger: Logger
    private var profiles: [SkillableLabProfile]?
    private let now: @Sendable () -> ContinuousClock.Instant
    private var fetchedAt: ContinuousClock.Instant
    private var refreshing: Task<Void, Never>?
    private var firstFetch: Task<[SkillableLabProfile], any Error>?

    init(skillable: SkillableClient, ttl: Duration, logger: Logger, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.skillable = skillable
        self.ttl = ttl
        self.logger = logger
        self.now = now
        fetchedAt = now()
    }

    /// The launchable profiles, sorted by name.
    func launchableProfiles() async throws -> [SkillableLabProfile] {
        if let profiles {
            if now() - fetchedAt > ttl, refreshing == nil {
                refreshing = Task { await self.refreshInBackground() }
            }
            return profiles
        }
        if let firstFetch { return try await firstFetch.value }
        let task = Task { try await self.fetch() }
        firstFetch = task
        defer { firstFetch = nil }
        return try await task.value
    }

    private func fetch() async throws -> [SkillableLabProfile] {
        let launchable = try await skillable.catalog().labProfiles.filter(\.isLaunchable).sorted { $0.name < $1.name }
        profiles = launchable
        fetchedAt = now()
        return launchable
    }

    private func refreshInBackground() async {
        do {
            _ = try await fetch()
        } catch {
            logger.warning("lab catalog refresh failed; serving the cached list", metadata: ["error": "\(error)"])
        }
        refreshing = nil
    }
}
