#!/usr/bin/perl
# Feeds jobmanager/gram/cloud.pm a job description and prints the condor
# submit description it writes and what submit returned, as JSON-ish
# lines for tests/pilot.rs. Usage: submit_test.pl JOBDIR [MODULE]
# (MODULE: cloud, the default, cloudorlocal or localonly).
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

my $dir = shift @ARGV;
my $module = shift @ARGV || 'cloud';
die "no such module: $module\n" unless $module =~ /^(cloud|cloudorlocal|localonly)$/;
my $class = "Globus::GRAM::JobManager::$module";
eval "require $class" or die $@;
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
    project     => 'cms',
);
my $jm = $class->new($desc);
my $r = $jm->submit();
if (ref($r) eq 'HASH') {
    print "JOB_ID=$r->{JOB_ID}\nJOB_STATE=$r->{JOB_STATE}\n";
} else {
    print "ERROR=" . $r->name() . "\n";
}
my $bad = $class->new(FakeDescription->new(directory => $dir, jobtype => 'single'));
my $e = $bad->submit();
print "NO_EXECUTABLE=" . (ref($e) eq 'Globus::GRAM::Error' ? $e->name() : 'accepted') . "\n";
