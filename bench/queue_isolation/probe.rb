# frozen_string_literal: true

# Benchmark probe (bench/queue_isolation, not a test), run inside the stand-in as mastodon from
# /home/mastodon/live with `bundle exec ruby`:
#   probe.rb TAG FLOOD SLEEP_MS INTERVAL_MS MAX_PROBES TIMEOUT_S WARMUP_MS
# FLOOD > 0: floods `default` with FLOOD FixtureWorker jobs of SLEEP_MS each, waits WARMUP_MS, then
# pushes one `push` job every INTERVAL_MS while `default` still has jobs waiting (at most MAX_PROBES).
# FLOOD = 0 (idle baseline): pushes MAX_PROBES `push` jobs every INTERVAL_MS with nothing else queued.
# Waits until every probe has run and every flood job has finished, then prints one JSON line with
# the fixture's records of this run's probes and how busy the threads serving `default` were while
# the probes were pushed: from the fixture's records (flood jobs running at each probe's enqueue
# time) and from Sidekiq's own heartbeat (`busy` of each process, every 5 s).
require 'json'
require 'sidekiq/api'
require File.expand_path('app', Dir.pwd)

tag, flood, sleep_ms, interval_ms, max_probes, timeout_s, warmup_ms = ARGV
flood = flood.to_i
sleep_ms = sleep_ms.to_i
interval = interval_ms.to_i / 1000.0
max_probes = max_probes.to_i
deadline = Time.now + timeout_s.to_i

def redis(*args)
  Sidekiq.redis { |conn| conn.call(*args) }
end

def processes
  Sidekiq::ProcessSet.new.map do |process|
    { 'pid' => process['pid'], 'queues' => process['queues'], 'concurrency' => process['concurrency'],
      'busy' => process['busy'], 'beat' => process['beat'] }
  end
end

flood_started = Time.now.to_f
(1..flood).each_slice(1000) do |slice|
  Sidekiq::Client.push_bulk('class' => FixtureWorker, 'queue' => 'default',
                            'args' => slice.map { |i| ["#{tag}-flood-#{i}", sleep_ms] })
end
sleep(warmup_ms.to_i / 1000.0) if flood.positive?

beats = {}
last_sample = 0.0
probes_started = Time.now.to_f
probes = []
while probes.size < max_probes && (flood.zero? || redis('LLEN', 'queue:default').to_i.positive?)
  probes << Sidekiq::Client.push('class' => FixtureWorker, 'queue' => 'push', 'args' => ["#{tag}-push-#{probes.size}", 0])
  if Time.now.to_f - last_sample >= 1.0
    processes.each { |process| beats[[process['pid'], process['beat']]] = process }
    last_sample = Time.now.to_f
  end
  sleep interval
end
probes_ended = Time.now.to_f
backlog_after_probes = redis('LLEN', 'queue:default').to_i
processes.each { |process| beats[[process['pid'], process['beat']]] = process }
serving_default = processes.select { |process| process['queues'].include?('default') }

records = {}
flood_done = []
loop do
  redis('LRANGE', FixtureWorker::RAN_KEY, 0, -1).each do |raw|
    item = JSON.parse(raw)
    records[item['arg']] = item if item['arg'].to_s.start_with?("#{tag}-push-")
  end
  flood_done = redis('LRANGE', FixtureWorker::DONE_KEY, 0, -1).map { |raw| JSON.parse(raw) }
                                                              .select { |item| item['arg'].to_s.start_with?("#{tag}-flood-") }
  break if (records.size >= probes.size && flood_done.size >= flood) || Time.now > deadline

  sleep 0.5
end

# A heartbeat counts only if it was taken while the probes were being pushed.
busy_samples = beats.values.select { |beat| beat['beat'] >= probes_started && beat['beat'] <= probes_ended }
                    .select { |beat| beat['queues'].include?('default') }
                    .sort_by { |beat| beat['beat'] }
flood_running_at_probes = records.values.map do |item|
  at = item['enqueued_at']
  flood_done.count { |job| job['ran_at'] <= at && at < job['done_at'] }
end

puts JSON.generate('tag' => tag, 'flood' => flood, 'flood_done' => flood_done.size, 'sleep_ms' => sleep_ms,
                   'flood_started' => flood_started, 'probes_started' => probes_started,
                   'probes_ended' => probes_ended, 'probes_sent' => probes.size, 'probes' => records.values,
                   'default_backlog_after_probes' => backlog_after_probes,
                   'default_threads' => serving_default.sum { |process| process['concurrency'].to_i },
                   'flood_running_at_probes' => flood_running_at_probes,
                   'sidekiq_busy_during_probes' => busy_samples,
                   'sidekiq_version' => Sidekiq::VERSION, 'timed_out' => Time.now > deadline)
