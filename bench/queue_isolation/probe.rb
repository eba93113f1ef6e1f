# frozen_string_literal: true

# Benchmark probe (bench/queue_isolation, not a test), run inside the stand-in as mastodon from
# /home/mastodon/live with `bundle exec ruby`:
#   probe.rb TAG FLOOD SLEEP_MS INTERVAL_MS MAX_PROBES TIMEOUT_S
# Floods `default` with FLOOD FixtureWorker jobs of SLEEP_MS each, then pushes one `push` job every
# INTERVAL_MS while `default` still has jobs waiting (at most MAX_PROBES). Waits until every probe
# has run, then prints one JSON line with the fixture's records of this run's probes.
require 'json'
require File.expand_path('app', Dir.pwd)

tag, flood, sleep_ms, interval_ms, max_probes, timeout_s = ARGV
flood = flood.to_i
sleep_ms = sleep_ms.to_i
interval = interval_ms.to_i / 1000.0
max_probes = max_probes.to_i
deadline = Time.now + timeout_s.to_i

def redis(*args)
  Sidekiq.redis { |conn| conn.call(*args) }
end

flood_started = Time.now.to_f
(1..flood).each_slice(1000) do |slice|
  Sidekiq::Client.push_bulk('class' => FixtureWorker, 'queue' => 'default',
                            'args' => slice.map { |i| ["#{tag}-flood-#{i}", sleep_ms] })
end

probes = []
while probes.size < max_probes && redis('LLEN', 'queue:default').to_i.positive?
  probes << Sidekiq::Client.push('class' => FixtureWorker, 'queue' => 'push', 'args' => ["#{tag}-push-#{probes.size}", 0])
  sleep interval
end
backlog_after_probes = redis('LLEN', 'queue:default').to_i

records = {}
flood_ran = 0
loop do
  flood_ran = 0
  redis('LRANGE', FixtureWorker::RAN_KEY, 0, -1).each do |raw|
    item = JSON.parse(raw)
    arg = item['arg'].to_s
    next unless arg.start_with?("#{tag}-")

    if arg.start_with?("#{tag}-push-")
      records[arg] = item
    else
      flood_ran += 1
    end
  end
  break if (records.size >= probes.size && flood_ran >= flood) || Time.now > deadline

  sleep 0.5
end

puts JSON.generate('tag' => tag, 'flood' => flood, 'flood_ran' => flood_ran, 'sleep_ms' => sleep_ms,
                   'flood_started' => flood_started, 'probes_sent' => probes.size, 'probes' => records.values,
                   'default_backlog_after_probes' => backlog_after_probes,
                   'sidekiq_version' => Sidekiq::VERSION, 'timed_out' => Time.now > deadline)
