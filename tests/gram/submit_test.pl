#!/usr/bin/perl
# Feeds jobmanager/gram/cloud.pm a job description and prints the condor
# submit description it writes and what submit returned, as JSON-ish
# lines for tests/pilot.rs. Usage: submit_test.pl JOBDIR
use strict;
use warnings;

package FakeDescription;
sub new { my ($c, %f) = @_; return bless {%f}, $c; }
our $AUTOLOAD;
sub AUTOLOAD {
    my $self = shift;
    my $n = $AUTOLOAD;
    $n =~ s/.*:://;
    return if $n eq 'DESTROY';
    my $v = $self->{$n};
    return ref($v) eq 'ARRAY' ? @$v : $v;
}

package main;
require Globus::GRAM::JobManager::cloud;

my $dir = shift @ARGV;
my $desc = FakeDescription->new(
    executable  => '/bin/cmsRun',
    arguments   => ['-j', 'FrameworkJobReport.xml', "it's here"],
    environment => [['X509_USER_PROXY', '/tmp/x509up'], ['MSG', 'a b']],
    directory   => $dir,
    stdout      => "$dir/out",
    stderr      => "$dir/err",
    count       => 4,
    max_memory  => 8000,
    max_wall_time => 120,
    jobtype     => 'single',
    queue       => 'cloud',
    project     => 'cms',
);
my $jm = Globus::GRAM::JobManager::cloud->new($desc);
my $r = $jm->submit();
if (ref($r) eq 'HASH') {
    print "JOB_ID=$r->{JOB_ID}\nJOB_STATE=$r->{JOB_STATE}\n";
} else {
    print "ERROR=" . $r->name() . "\n";
}
my $bad = Globus::GRAM::JobManager::cloud->new(FakeDescription->new(directory => $dir, jobtype => 'single'));
my $e = $bad->submit();
print "NO_EXECUTABLE=" . (ref($e) eq 'Globus::GRAM::Error' ? $e->name() : 'accepted') . "\n";
